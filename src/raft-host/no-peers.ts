import type { Transport } from './transport.ts';

/** The transport of a cluster whose only voter is this node: nobody to send to, nobody to hear from. */
export const noPeers: Transport = {
  send() {},
  onMessage: () => () => {},
};
