/**
 * The libp2p node of a shoal host: TCP + TLS 1.3 + yamux on one listener, the node's Ed25519 key as
 * its identity, connection-manager limits raised for a fleet, and a connection gater that refuses
 * peers on the deny list (removed nodes) before any protocol runs. Protocols are added by their
 * owners through the AuthGuard (auth.ts), never directly, so that every one is authenticated.
 */
import { createLibp2p, type Libp2p } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { tls } from '@libp2p/tls';
import { yamux } from '@libp2p/yamux';
import { identify, type Identify } from '@libp2p/identify';
import { gossipsub } from '@libp2p/gossipsub';
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface';
import { liveness, type LivenessMonitor, type LivenessOptions } from './liveness.ts';
import { windowUpdatesAtHalf } from './yamux-window.ts';

export interface ConnectionLimits {
  /** Open connections before libp2p starts pruning (libp2p's default, 300, is below a fleet's size). */
  maxConnections: number;
  /** New inbound connections per second per IP address (libp2p's default of 5 refuses a restarting fleet behind NAT). */
  inboundConnectionThreshold: number;
  /** Inbound connections still in their TLS/muxer upgrade at once. */
  maxIncomingPendingConnections: number;
}

export const DEFAULT_LIMITS: ConnectionLimits = {
  maxConnections: 2048,
  inboundConnectionThreshold: 200,
  maxIncomingPendingConnections: 256,
};

/** Peers to refuse at the connection level: shared with the AuthGuard, which adds removed nodes. */
export class PeerDenyList {
  readonly #peers = new Set<string>();
  add(peerId: string): void { this.#peers.add(peerId); }
  delete(peerId: string): void { this.#peers.delete(peerId); }
  has(peerId: string): boolean { return this.#peers.has(peerId); }
}

export interface NetNodeOptions {
  privateKey: Ed25519PrivateKey;
  /** Multiaddrs to listen on: one TCP listener, e.g. `/ip4/0.0.0.0/tcp/4242` (`tcp/0` in tests). */
  listen: string[];
  /** Addresses to tell peers instead of the listen addresses (`--advertise-addr`). */
  announce?: string[];
  denyList?: PeerDenyList;
  limits?: Partial<ConnectionLimits>;
  /** Bound on the transport upgrade (TCP accepted → TLS + yamux ready). */
  upgradeTimeoutMs?: number;
  /**
   * Whether gossip may flow with a peer: true only for peers that have authenticated (the
   * AuthGuard's `isAuthenticatedPeer`). Others get a score far below every gossipsub threshold, so
   * they are never published or gossiped to, never grafted, and what they send is dropped.
   */
  gossipTrust?: (peerId: string) => boolean;
  /** gossipsub options over the defaults below (tests and measurements). */
  gossip?: Partial<GossipsubOptions>;
  /** How dead connections are found (liveness.ts); its defaults otherwise. */
  liveness?: LivenessOptions;
}

export type GossipsubOptions = NonNullable<Parameters<typeof gossipsub>[0]>;

export type Gossip = ReturnType<ReturnType<typeof gossipsub>>;
export type NetNode = Libp2p<{ identify: Identify; pubsub: Gossip; liveness: LivenessMonitor }>;

/** appSpecificScore of a peer that has not authenticated (weight 10 makes it -1e7 in total). */
const UNTRUSTED_SCORE = -1e6;

export async function createNetNode(opts: NetNodeOptions): Promise<NetNode> {
  windowUpdatesAtHalf(); // a window update per half window read, not per frame (yamux-window.ts)
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const deny = opts.denyList ?? new PeerDenyList();
  const denied = (peer: PeerId) => deny.has(peer.toString());
  return createLibp2p({
    privateKey: opts.privateKey,
    addresses: { listen: opts.listen, announce: opts.announce ?? [] },
    transports: [tcp()],
    connectionEncrypters: [tls()],
    // A yamux ping per connection finds dead peers (liveness.ts), in place of libp2p's connection
    // monitor (a new stream per ping) and yamux's keep-alive (which only logs a failed ping).
    streamMuxers: [yamux({ enableKeepAlive: false })],
    connectionMonitor: { enabled: false },
    // identify answers only what a TLS handshake already shows (key, addresses, protocol names);
    // gossipsub needs it to learn which peers speak its protocol. gossipsub registers its own
    // handlers, which the AuthGuard cannot wrap: `gossipTrust` and `guardTopic` keep it closed.
    services: {
      identify: identify(),
      liveness: liveness(opts.liveness),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        scoreParams: { appSpecificScore: (p: string) => (opts.gossipTrust?.(p) ? 0 : UNTRUSTED_SCORE) },
        ...opts.gossip,
      }),
    },
    connectionManager: {
      maxConnections: limits.maxConnections,
      inboundConnectionThreshold: limits.inboundConnectionThreshold,
      maxIncomingPendingConnections: limits.maxIncomingPendingConnections,
      inboundUpgradeTimeout: opts.upgradeTimeoutMs ?? 10_000,
    },
    connectionGater: {
      denyDialMultiaddr: () => false,
      denyDialPeer: denied,
      denyInboundEncryptedConnection: denied,
      denyOutboundEncryptedConnection: denied,
    },
  });
}
