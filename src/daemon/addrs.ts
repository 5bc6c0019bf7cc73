/** Where this host listens for other nodes and where they reach it. */
import { networkInterfaces } from 'node:os';
import { type HostPort, parseHostPort } from './membership.ts';

export interface Addrs { listen: HostPort; advertise: HostPort }

export function addrsOf(opts: { listenAddr?: string; advertiseAddr?: string }): Addrs {
  const listen = parseHostPort('--listen-addr', opts.listenAddr ?? '0.0.0.0');
  const advertise = opts.advertiseAddr
    ? parseHostPort('--advertise-addr', opts.advertiseAddr, listen.host === '0.0.0.0' ? firstAddress() : listen.host)
    : { host: listen.host === '0.0.0.0' || listen.host === '::' ? firstAddress() : listen.host, port: listen.port };
  return { listen, advertise };
}

/** This host's first non-loopback IPv4 address, else 127.0.0.1 (as Docker picks one when it can). */
function firstAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}
