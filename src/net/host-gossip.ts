/**
 * Host announcements over gossip: every host publishes on `/shoal/hosts/1`, every `periodMs` and
 * soon after its local state changes, who it is (node id, role, incarnation), the underlay address
 * its VXLAN traffic uses and the IPv4 addresses of its tasks on each overlay network. Every host keeps
 * the latest announcement per node in a `HostDirectory`: liveness (heard within `expireMs`) and the
 * overlay's forwarding entries (task address → host address) come from there.
 *
 * Receipt never trusts the bytes (host-announcement.ts checks them); a version this end does not
 * know is counted and ignored (a newer peer, not an attack); the announcement's `node` must be the
 * certified node of the peer that signed it. Nothing here throws on input from the network. The
 * directory is host-directory.ts.
 */
import { isIP } from 'node:net';
import { type Message, TopicValidatorResult } from '@libp2p/gossipsub';
import { encode } from '../lib/codec.ts';
import { type Clock, systemClock } from '../manager/dispatcher/clock.ts';
import { SubscriptionRepair } from './gossip.ts';
import {
  checkNets, decodeAnnouncement, DROP_REASONS, type DropReason, encodeAnnouncement, HOST_ANNOUNCEMENT_VERSION, HOST_LIMITS,
  type HostAnnouncement, type HostNets, type HostRole, HOSTS_TOPIC, isId, sameNets,
} from './host-announcement.ts';
import { HostDirectory } from './host-directory.ts';
import type { NetNode } from './node.ts';

export interface HostGossipOptions {
  node: NetNode;
  /** This host's node id (its certificate's CN). */
  nodeId: string;
  role: HostRole;
  /** Underlay IP this host's VXLAN traffic uses. */
  addr: string;
  /** The certified node id of a libp2p peer (from the cluster's certificates), undefined for strangers. */
  nodeOfPeer: (peerId: string) => string | undefined;
  /** The peer that relayed a message has authenticated (the AuthGuard's `isAuthenticatedPeer`); unchecked if absent. */
  isAuthenticated?: (peerId: string) => boolean;
  clock?: Clock;
  /** Announce every this many ms (default 1000). */
  periodMs?: number;
  /** A host not heard within this is dead (default 5 × periodMs). */
  expireMs?: number;
  /** ms timestamp of this process's start (default: the clock's now at construction). */
  incarnation?: number;
  log?: (msg: string) => void;
  /**
   * Resend the topic subscription to each peer once it has been authenticated a while (default
   * true): a peer that read our first subscription before authenticating us dropped it (see
   * `SubscriptionRepair` in gossip.ts).
   */
  repairSubscriptions?: boolean;
}

export interface HostGossipStats {
  published: number;
  publishFailed: number;
  /** Messages on the topic handed to this host by gossipsub (after its signature check). */
  received: number;
  /** Accepted into the directory. */
  applied: number;
  /** Of a version this end does not speak: relayed, not applied. */
  unknownVersion: number;
  /** Subscriptions resent to peers after they authenticated. */
  resubscribed: number;
  /** Peers gossipsub knows to subscribe to the topic (direct neighbours only). */
  topicPeers: number;
  dropped: Record<DropReason, number>;
}

/** At most one change-driven announcement per this many ms. */
const MIN_GAP_MS = 100;
/** A kind of drop is logged at most once per this many ms. */
const LOG_EVERY_MS = 60_000;

export class HostGossip {
  readonly directory: HostDirectory;
  readonly incarnation: number;
  readonly #o: HostGossipOptions;
  readonly #clock: Clock;
  readonly periodMs: number;
  #role: HostRole;
  #addr: string;
  #nets: HostNets = {};
  #seq = 0;
  #lastPublishAt = -Infinity;
  #timer: (() => void) | null = null;
  #timerAt = Infinity;
  #running = false;
  #stats: HostGossipStats = {
    published: 0, publishFailed: 0, received: 0, applied: 0, unknownVersion: 0, resubscribed: 0, topicPeers: 0,
    dropped: Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>,
  };
  readonly #loggedAt = new Map<string, number>();
  readonly #repair: SubscriptionRepair | null;

  constructor(opts: HostGossipOptions) {
    if (!isId(opts.nodeId)) throw new RangeError(`host gossip: node id must be 1–${HOST_LIMITS.maxIdLength} characters`);
    checkAddr(opts.addr);
    this.#o = opts;
    this.#clock = opts.clock ?? systemClock;
    this.periodMs = opts.periodMs ?? 1000;
    this.incarnation = opts.incarnation ?? this.#clock.now();
    this.#role = opts.role;
    this.#addr = opts.addr;
    this.directory = new HostDirectory({ clock: this.#clock, expireMs: opts.expireMs ?? 5 * this.periodMs });
    this.#repair = opts.repairSubscriptions === false ? null : new SubscriptionRepair(opts.node, {
      topics: () => [HOSTS_TOPIC], isAuthenticated: opts.isAuthenticated, clock: this.#clock,
    });
  }

  /** This host's tasks' addresses per overlay network. Throws RangeError when over the bounds. */
  setLocal(nets: HostNets): void {
    const copy: Record<string, string[]> = {};
    for (const [id, addrs] of Object.entries(nets)) copy[id] = [...addrs];
    const problem = checkNets(copy);
    if (problem) throw new RangeError(`host gossip: ${problem}`);
    const size = encode(this.#announcement(copy, this.#seq + 1)).length;
    if (size > HOST_LIMITS.maxBytes) throw new RangeError(`host gossip: the announcement would be ${size} bytes, over the bound of ${HOST_LIMITS.maxBytes}`);
    if (sameNets(copy, this.#nets)) return;
    this.#nets = copy;
    this.#soon();
  }

  setRole(role: HostRole): void {
    if (role === this.#role) return;
    this.#role = role;
    this.#soon();
  }

  /** The underlay address changed (e.g. a new --advertise-addr). */
  setAddr(addr: string): void {
    checkAddr(addr);
    if (addr === this.#addr) return;
    this.#addr = addr;
    this.#soon();
  }

  /** Subscribe, validate incoming announcements, and announce now and every `periodMs`. */
  start(): void {
    if (this.#running) return;
    const pubsub = this.#o.node.services.pubsub;
    pubsub.topicValidators.set(HOSTS_TOPIC, (via, msg) => this.#receive(via.toString(), msg));
    pubsub.addEventListener('subscription-change', this.#onSubscription);
    try {
      pubsub.subscribe(HOSTS_TOPIC); // throws while the node is not started
    } catch (err) {
      pubsub.removeEventListener('subscription-change', this.#onSubscription);
      pubsub.topicValidators.delete(HOSTS_TOPIC);
      throw err;
    }
    this.#running = true;
    this.#repair?.start();
    this.#publish();
  }

  /**
   * A peer (newly connected, or newly subscribed) joined the topic: announce soon rather than at
   * the next period, so that it learns of this host at once. Our announcement at start reached
   * nobody whose subscription we had not heard yet.
   */
  #onSubscription = (evt: CustomEvent<{ subscriptions: { topic: string; subscribe: boolean }[] }>): void => {
    if (evt.detail.subscriptions.some((s) => s.topic === HOSTS_TOPIC && s.subscribe)) this.#soon();
  };

  /** Unsubscribe and clear every timer. The directory keeps what it holds (no longer expiring). */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    this.#timer?.();
    this.#timer = null;
    this.#timerAt = Infinity;
    const pubsub = this.#o.node.services.pubsub;
    this.#repair?.stop();
    pubsub.removeEventListener('subscription-change', this.#onSubscription);
    try {
      pubsub.unsubscribe(HOSTS_TOPIC);
    } catch {}
    pubsub.topicValidators.delete(HOSTS_TOPIC);
    this.directory.stop();
  }

  stats(): HostGossipStats {
    let topicPeers = 0;
    try {
      topicPeers = this.#running ? this.#o.node.services.pubsub.getSubscribers(HOSTS_TOPIC).length : 0;
    } catch {}
    return { ...this.#stats, resubscribed: this.#repair?.resent ?? 0, topicPeers, dropped: { ...this.#stats.dropped } };
  }

  #announcement(nets: HostNets, seq: number): HostAnnouncement {
    return { t: 'host', v: HOST_ANNOUNCEMENT_VERSION, node: this.#o.nodeId, seq, incarnation: this.incarnation, role: this.#role, addr: this.#addr, nets };
  }

  /** Announce as soon as the 100 ms gap allows (several changes in a row make one announcement). */
  #soon(): void {
    if (!this.#running) return;
    this.#arm(Math.max(0, this.#lastPublishAt + MIN_GAP_MS - this.#clock.now()));
  }

  #arm(delayMs: number): void {
    const at = this.#clock.now() + delayMs;
    if (this.#timer && this.#timerAt <= at) return;
    this.#timer?.();
    this.#timerAt = at;
    this.#timer = this.#clock.setTimer(delayMs, () => {
      this.#timer = null;
      this.#timerAt = Infinity;
      this.#publish();
    });
  }

  #publish(): void {
    if (!this.#running) return;
    const a = this.#announcement(this.#nets, ++this.#seq);
    this.#lastPublishAt = this.#clock.now();
    this.directory.offer(a, { local: true });
    this.#arm(this.periodMs);
    let bytes: Uint8Array;
    try {
      bytes = encodeAnnouncement(a);
    } catch (err) {
      this.#stats.publishFailed++;
      this.#logOnce('encode', `host gossip: cannot announce: ${String(err)}`);
      return;
    }
    this.#o.node.services.pubsub.publish(HOSTS_TOPIC, bytes).then(
      () => void this.#stats.published++,
      (err: unknown) => {
        this.#stats.publishFailed++;
        this.#logOnce('publish', `host gossip: publishing failed: ${err instanceof Error ? err.message : String(err)}`);
      },
    );
  }

  #receive(via: string, msg: Message): TopicValidatorResult {
    try {
      return this.#validate(via, msg);
    } catch (err) {
      // Nothing above should throw; if it does, the message is dropped, not the node.
      return this.#drop('malformed', `unexpected: ${String(err)}`, via);
    }
  }

  #validate(via: string, msg: Message): TopicValidatorResult {
    this.#stats.received++;
    if (this.#o.isAuthenticated && !this.#o.isAuthenticated(via)) return this.#drop('unauthenticatedRelay', `relayed by ${via}`, via);
    if (msg.type !== 'signed') return this.#drop('unsigned', 'unsigned message', via);
    const signer = msg.from.toString();
    const signerNode = this.#o.nodeOfPeer(signer);
    if (signerNode === undefined) {
      // Possibly a node this host's store has not heard of yet (a join being replicated): not
      // forwarded, but no fault of the relay.
      this.#drop('unknownSigner', `signed by peer ${signer}, no node of the cluster`, via);
      return TopicValidatorResult.Ignore;
    }
    const d = decodeAnnouncement(msg.data);
    if (!d.ok) {
      if (d.reason === 'unknownVersion') {
        // A newer host: relay it (older hosts in the mesh must not cut newer ones off), do not apply.
        this.#stats.unknownVersion++;
        this.#logOnce('unknownVersion', `host gossip: ignoring an announcement of ${d.detail} from node ${signerNode} (this host speaks ${HOST_ANNOUNCEMENT_VERSION})`);
        return TopicValidatorResult.Accept;
      }
      return this.#drop(d.reason, d.detail, via, signerNode);
    }
    const a = d.announcement;
    if (a.node !== signerNode) return this.#drop('signerMismatch', `announces node ${a.node.slice(0, 64)} but was signed by node ${signerNode}`, via);
    if (a.node === this.#o.nodeId) {
      // Our own (earlier) announcement coming back: nothing wrong with the relay.
      this.#stats.dropped.self++;
      return TopicValidatorResult.Ignore;
    }
    if (this.directory.offer(a) === 'stale') {
      this.#stats.dropped.stale++;
      return TopicValidatorResult.Ignore;
    }
    this.#stats.applied++;
    return TopicValidatorResult.Accept;
  }

  #drop(reason: DropReason, detail: string, via: string, signerNode?: string): TopicValidatorResult {
    this.#stats.dropped[reason]++;
    this.#logOnce(reason, `host gossip: dropped an announcement (${reason}: ${detail}) relayed by ${via}${signerNode ? `, signed by node ${signerNode}` : ''}`);
    return TopicValidatorResult.Reject;
  }

  #logOnce(kind: string, msg: string): void {
    if (!this.#o.log) return;
    const now = this.#clock.now();
    const last = this.#loggedAt.get(kind);
    if (last !== undefined && now - last < LOG_EVERY_MS) return;
    this.#loggedAt.set(kind, now);
    this.#o.log(msg);
  }
}

function checkAddr(addr: string): void {
  if (typeof addr !== 'string' || addr.length > 64 || isIP(addr) === 0) throw new RangeError(`host gossip: addr ${JSON.stringify(addr)} is not an IP address`);
}
