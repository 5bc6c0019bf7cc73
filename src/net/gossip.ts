/**
 * Gossip (node liveness and status, later endpoint tables) over gossipsub, closed to the cluster.
 * gossipsub serves its own protocol handlers, so it is guarded in two places: peer scores (node.ts,
 * `gossipTrust`) keep unauthenticated peers out of publishing, gossip and the mesh, and `guardTopic`
 * validates every message: relayed by an authenticated peer, signed, and from a cluster member.
 */
import { TopicValidatorResult } from '@libp2p/gossipsub';
import { type Clock, systemClock } from '../manager/dispatcher/clock.ts';
import type { NetNode } from './node.ts';

export interface TopicGuard {
  /** The peer that handed us the message has authenticated on a connection. */
  isAuthenticated: (peerId: string) => boolean;
  /** The message's origin (possibly several hops away) is a member of the cluster. */
  isMember: (peerId: string) => boolean;
  onRejected?: (e: { from: string; via: string; reason: string }) => void;
}

/** Subscribe to `topic` with a validator that rejects anything not from the cluster. */
export function guardTopic(node: NetNode, topic: string, guard: TopicGuard): void {
  node.services.pubsub.topicValidators.set(topic, (via, msg) => {
    const reject = (reason: string) => {
      guard.onRejected?.({ from: msg.type === 'signed' ? msg.from.toString() : '?', via: via.toString(), reason });
      return TopicValidatorResult.Reject;
    };
    if (!guard.isAuthenticated(via.toString())) return reject('relayed by a peer that has not authenticated');
    if (msg.type !== 'signed') return reject('unsigned message');
    if (!guard.isMember(msg.from.toString())) return reject('signed by a peer that is not a member of the cluster');
    return TopicValidatorResult.Accept;
  });
  node.services.pubsub.subscribe(topic);
}

export interface SubscriptionRepairOptions {
  /** The topics to resend (this node's own subscriptions among them). */
  topics: () => string[];
  /** Whether a peer has authenticated (the AuthGuard's `isAuthenticatedPeer`); without it, every gossipsub peer counts. */
  isAuthenticated?: (peerId: string) => boolean;
  clock?: Clock;
  /**
   * Resend this long after a peer is first seen authenticated: past the peer's cached score of us
   * (gossipsub caches scores for one heartbeat, 1 s), so that the resent RPC is read.
   */
  afterMs?: number;
  checkEveryMs?: number;
}

/**
 * gossipsub tells a peer our subscriptions once, when its stream to the peer opens. A peer that reads
 * that RPC before it has authenticated us still scores us as untrusted (node.ts, `gossipTrust`), so it
 * treats us as graylisted and drops the whole RPC: it never learns that we subscribe, and never sends
 * us the topic, for the life of the connection (measured: two hosts whose trust came 1.5 s late never
 * heard each other). Authentication usually wins that race (identify and a stream negotiation stand
 * before gossipsub's first RPC), but a loaded host can lose it. This resends our subscriptions once to
 * every peer that has been authenticated for `afterMs`, and again on each new connection. A duplicate
 * subscription is harmless to the receiver.
 *
 * A pass walks every gossipsub peer, so passes run only while one may find work: for a while after a
 * connection opens or a peer is identified, and while a peer seen in the last pass waits for its
 * turn or for its authentication. A manager with 1,000 idle workers otherwise spent ~2% of its time
 * walking them twice a second (issue #18).
 */
export class SubscriptionRepair {
  readonly #clock: Clock;
  readonly #afterMs: number;
  readonly #everyMs: number;
  /** peer → the connection it was seen on, since when authenticated, whether resent. */
  readonly #peers = new Map<string, { conn: string; since: number; done: boolean }>();
  #cancel: (() => void) | null = null;
  #resent = 0;
  /** Passes run until then at least (a connection opened or a peer was identified). */
  #scanUntil = 0;
  /** The last pass left a peer to come back to. */
  #waiting = true;
  readonly #onPeerEvent = (): void => {
    this.#scanUntil = Math.max(this.#scanUntil, this.#clock.now() + this.#afterMs + 2 * this.#everyMs);
  };

  constructor(private readonly node: NetNode, private readonly opts: SubscriptionRepairOptions) {
    this.#clock = opts.clock ?? systemClock;
    this.#afterMs = opts.afterMs ?? 1500;
    this.#everyMs = opts.checkEveryMs ?? 500;
  }

  /** Subscriptions resent so far. */
  get resent(): number { return this.#resent; }

  start(): void {
    if (this.#cancel) return;
    this.node.addEventListener('connection:open', this.#onPeerEvent);
    this.node.addEventListener('peer:identify', this.#onPeerEvent);
    this.#waiting = true;
    this.#onPeerEvent();
    const tick = () => {
      this.check();
      this.#cancel = this.#clock.setTimer(this.#everyMs, tick);
    };
    this.#cancel = this.#clock.setTimer(this.#everyMs, tick);
  }

  stop(): void {
    this.#cancel?.();
    this.#cancel = null;
    this.node.removeEventListener('connection:open', this.#onPeerEvent);
    this.node.removeEventListener('peer:identify', this.#onPeerEvent);
    this.#peers.clear();
  }

  /** One pass (runs every `checkEveryMs` once started); nothing when no peer can need a resend. */
  check(): void {
    const pubsub = this.node.services.pubsub;
    const send = (pubsub as unknown as { sendSubscriptions?: (peer: string, topics: string[], subscribe: boolean) => void }).sendSubscriptions;
    if (typeof send !== 'function') return; // a gossipsub without it: nothing to repair with
    const now = this.#clock.now();
    if (!this.#waiting && now > this.#scanUntil) return;
    let waiting = false;
    const seen = new Set<string>();
    for (const peer of pubsub.getPeers()) {
      const id = peer.toString();
      seen.add(id);
      if (this.opts.isAuthenticated && !this.opts.isAuthenticated(id)) {
        this.#peers.delete(id);
        waiting = true;
        continue;
      }
      const conn = this.node.getConnections(peer)[0]?.id ?? '';
      let e = this.#peers.get(id);
      if (!e || e.conn !== conn) {
        e = { conn, since: now, done: false };
        this.#peers.set(id, e);
      }
      if (e.done) continue;
      if (now - e.since < this.#afterMs) {
        waiting = true;
        continue;
      }
      e.done = true;
      const topics = this.opts.topics().filter((t) => pubsub.getTopics().includes(t));
      if (topics.length === 0) continue;
      try {
        send.call(pubsub, id, topics, true);
        this.#resent++;
      } catch {}
    }
    for (const id of this.#peers.keys()) if (!seen.has(id)) this.#peers.delete(id);
    this.#waiting = waiting;
  }
}
