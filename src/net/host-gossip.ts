/**
 * Host announcements over gossip: every host publishes on `/shoal/hosts/1`, every `periodMs` and
 * soon after its local state changes, who it is (node id, role, incarnation), the underlay address
 * its VXLAN traffic uses and the IPv4 addresses of its tasks on each overlay network. Every host keeps
 * the latest announcement per node in a `HostDirectory`: liveness (heard within `expireMs`) and the
 * overlay's forwarding entries (task address → host address) come from there.
 *
 * Receipt never trusts the bytes: size, msgpack, every field's type, length and count are checked;
 * a version this end does not know is counted and ignored (a newer peer, not an attack); the
 * announcement's `node` must be the certified node of the peer that signed it. Nothing here throws
 * on input from the network.
 */
import { isIP, isIPv4 } from 'node:net';
import { type Message, TopicValidatorResult } from '@libp2p/gossipsub';
import { decode, encode } from '../lib/codec.ts';
import { isPlainObject } from '../lib/frames.ts';
import { type Clock, systemClock } from '../manager/dispatcher/clock.ts';
import { SubscriptionRepair } from './gossip.ts';
import type { NetNode } from './node.ts';

export const HOSTS_TOPIC = '/shoal/hosts/1';
/** The announcement version this end speaks. */
export const HOST_ANNOUNCEMENT_VERSION = 1;

export const HOST_LIMITS = {
  /** Largest accepted announcement, in bytes of msgpack. */
  maxBytes: 1024 * 1024,
  maxNetworks: 4096,
  /** Task addresses over all networks of one announcement. */
  maxAddrs: 65536,
  /** Node ids and network ids. */
  maxIdLength: 256,
} as const;

export type HostRole = 'manager' | 'worker';

/** Overlay network id → IPv4 addresses (no prefix) of this host's tasks on it. */
export type HostNets = Record<string, readonly string[]>;

export interface HostAnnouncement {
  t: 'host';
  v: typeof HOST_ANNOUNCEMENT_VERSION;
  node: string;
  /** Grows with every announcement of one incarnation. */
  seq: number;
  /** ms timestamp of the announcing process's start: a restarted host has a higher one. */
  incarnation: number;
  role: HostRole;
  /** Underlay IP the host's VXLAN traffic uses. */
  addr: string;
  nets: HostNets;
}

/** Why an announcement was dropped (each is counted). */
export type DropReason =
  | 'unsigned' // gossipsub message without a signer (cannot be tied to a node)
  | 'unauthenticatedRelay' // handed to us by a peer that has not authenticated
  | 'unknownSigner' // the signer's peer id is no node of the cluster
  | 'signerMismatch' // `node` is not the signer's node
  | 'tooLarge'
  | 'undecodable'
  | 'malformed'
  | 'stale' // not newer than what the directory holds for that node
  | 'self'; // claims to be this host

export const DROP_REASONS: readonly DropReason[] = [
  'unsigned', 'unauthenticatedRelay', 'unknownSigner', 'signerMismatch', 'tooLarge', 'undecodable', 'malformed', 'stale', 'self',
];

// ------------------------------------------------------------------------------------- codec

export type DecodeResult =
  | { ok: true; announcement: HostAnnouncement }
  | { ok: false; reason: 'tooLarge' | 'undecodable' | 'malformed' | 'unknownVersion'; detail: string };

/** Encodes an announcement; throws RangeError when it is malformed or over the size bound (a sender bug). */
export function encodeAnnouncement(a: HostAnnouncement): Uint8Array {
  const problem = checkAnnouncement(a);
  if (problem) throw new RangeError(`host announcement: ${problem}`);
  const bytes = encode(a);
  if (bytes.length > HOST_LIMITS.maxBytes) {
    throw new RangeError(`host announcement of ${bytes.length} bytes is over the bound of ${HOST_LIMITS.maxBytes}`);
  }
  return bytes;
}

/** Decodes and checks an announcement from the network. Never throws. */
export function decodeAnnouncement(bytes: Uint8Array): DecodeResult {
  if (bytes.length > HOST_LIMITS.maxBytes) return { ok: false, reason: 'tooLarge', detail: `${bytes.length} bytes` };
  let raw: unknown;
  try {
    raw = decode(bytes);
  } catch (err) {
    return { ok: false, reason: 'undecodable', detail: err instanceof Error ? err.message : String(err) };
  }
  if (!isPlainObject(raw)) return { ok: false, reason: 'malformed', detail: 'not a map' };
  if (raw.t !== 'host') return { ok: false, reason: 'malformed', detail: 't: not "host"' };
  if (raw.v !== HOST_ANNOUNCEMENT_VERSION) {
    if (typeof raw.v === 'number' && Number.isSafeInteger(raw.v) && raw.v > 0) {
      return { ok: false, reason: 'unknownVersion', detail: `version ${raw.v}` };
    }
    return { ok: false, reason: 'malformed', detail: 'v: not a positive integer' };
  }
  let problem: string | null;
  try {
    problem = checkAnnouncement(raw);
  } catch (err) {
    problem = String(err);
  }
  if (problem) return { ok: false, reason: 'malformed', detail: problem };
  return { ok: true, announcement: raw as unknown as HostAnnouncement };
}

const isId = (x: unknown): x is string => typeof x === 'string' && x.length > 0 && x.length <= HOST_LIMITS.maxIdLength;
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/** Null when `x` is a well-formed v1 announcement, else what is wrong (naming the field). */
export function checkAnnouncement(x: unknown): string | null {
  if (!isPlainObject(x)) return 'not a map';
  if (x.t !== 'host') return 't: not "host"';
  if (x.v !== HOST_ANNOUNCEMENT_VERSION) return `v: not ${HOST_ANNOUNCEMENT_VERSION}`;
  if (!isId(x.node)) return `node: not a string of 1–${HOST_LIMITS.maxIdLength} characters`;
  if (!isCount(x.seq)) return 'seq: not a non-negative integer';
  if (!isCount(x.incarnation)) return 'incarnation: not a non-negative integer';
  if (x.role !== 'manager' && x.role !== 'worker') return 'role: not manager|worker';
  if (typeof x.addr !== 'string' || x.addr.length > 64 || isIP(x.addr) === 0) return 'addr: not an IP address';
  return checkNets(x.nets);
}

/** Null when `nets` is a well-formed, bounded network → task addresses map. */
export function checkNets(nets: unknown): string | null {
  if (!isPlainObject(nets)) return 'nets: not a map';
  const ids = Object.keys(nets);
  if (ids.length > HOST_LIMITS.maxNetworks) return `nets: more than ${HOST_LIMITS.maxNetworks} networks`;
  let total = 0;
  for (const id of ids) {
    if (!isId(id)) return `nets: network id not a string of 1–${HOST_LIMITS.maxIdLength} characters`;
    const addrs = nets[id];
    if (!Array.isArray(addrs)) return `nets.${id}: not an array`;
    total += addrs.length;
    if (total > HOST_LIMITS.maxAddrs) return `nets: more than ${HOST_LIMITS.maxAddrs} addresses in all`;
    for (let i = 0; i < addrs.length; i++) {
      const a: unknown = addrs[i];
      if (typeof a !== 'string' || a.length > 15 || !isIPv4(a)) return `nets.${id}[${i}]: not an IPv4 address`;
    }
  }
  return null;
}

// --------------------------------------------------------------------------------- directory

export interface HostEntry {
  announcement: HostAnnouncement;
  /** Local clock time the announcement was accepted. */
  heardAt: number;
  local: boolean;
}

export interface HostStatus {
  node: string;
  role: HostRole;
  addr: string;
  incarnation: number;
  seq: number;
  heardAt: number;
  alive: boolean;
  local: boolean;
  /** Network id → number of task addresses. */
  networks: Record<string, number>;
}

export interface ForwardingEntry {
  /** Underlay address of the host (the VXLAN destination). */
  hostAddr: string;
  /** Address of a task on the network. */
  taskAddr: string;
  node: string;
}

export interface HostDirectoryOptions {
  clock?: Clock;
  /** A remote host is alive while heard within this (default 5000 ms). */
  expireMs?: number;
  /** Change callbacks are coalesced over this window (default 0: once per burst of synchronous changes). */
  coalesceMs?: number;
}

/**
 * The latest announcement per node. Newer incarnation wins; within one incarnation the higher seq.
 * A remote entry not heard within `expireMs` is dropped (and a later announcement of any
 * incarnation starts afresh, so a host whose clock went back on restart is not shut out). The local
 * host's own entry is never expired.
 */
export class HostDirectory {
  readonly #clock: Clock;
  readonly expireMs: number;
  readonly #coalesceMs: number;
  readonly #entries = new Map<string, HostEntry>();
  readonly #listeners = new Set<() => void>();
  #notifyCancel: (() => void) | null = null;
  #sweepCancel: (() => void) | null = null;
  #sweepAt = Infinity;

  constructor(opts: HostDirectoryOptions = {}) {
    this.#clock = opts.clock ?? systemClock;
    this.expireMs = opts.expireMs ?? 5000;
    this.#coalesceMs = opts.coalesceMs ?? 0;
  }

  /**
   * Offer a (checked) announcement. Returns 'applied' when it replaced or created the node's entry,
   * 'stale' when the directory already holds a newer or equal one.
   */
  offer(a: HostAnnouncement, opts: { local?: boolean } = {}): 'applied' | 'stale' {
    const now = this.#clock.now();
    const old = this.#entries.get(a.node);
    const oldAlive = old ? this.#isAlive(old, now) : false;
    if (old && oldAlive && !newer(a, old.announcement)) return 'stale';
    this.#entries.set(a.node, { announcement: a, heardAt: now, local: opts.local ?? false });
    if (!old || !oldAlive || old.announcement.addr !== a.addr || old.announcement.role !== a.role || !sameNets(old.announcement.nets, a.nets)) {
      this.#changed();
    }
    if (!opts.local) this.#scheduleSweep(now + this.expireMs);
    return 'applied';
  }

  get(node: string): HostEntry | undefined {
    return this.#entries.get(node);
  }

  /** Heard within `expireMs` (the local host: always, once announced). */
  alive(node: string): boolean {
    const e = this.#entries.get(node);
    return e ? this.#isAlive(e, this.#clock.now()) : false;
  }

  /** Task address → host address over the live remote hosts on `networkId`. */
  forwarding(networkId: string): ForwardingEntry[] {
    const now = this.#clock.now();
    const out: ForwardingEntry[] = [];
    for (const e of this.#entries.values()) {
      if (e.local || !this.#isAlive(e, now)) continue;
      const addrs = Object.hasOwn(e.announcement.nets, networkId) ? e.announcement.nets[networkId]! : [];
      for (const taskAddr of addrs) out.push({ hostAddr: e.announcement.addr, taskAddr, node: e.announcement.node });
    }
    return out;
  }

  /** Every entry held (live or awaiting the sweep), for status. */
  hosts(): HostStatus[] {
    const now = this.#clock.now();
    return [...this.#entries.values()].map((e) => {
      const a = e.announcement;
      const networks: Record<string, number> = {};
      for (const [id, addrs] of Object.entries(a.nets)) networks[id] = addrs.length;
      return { node: a.node, role: a.role, addr: a.addr, incarnation: a.incarnation, seq: a.seq, heardAt: e.heardAt, alive: this.#isAlive(e, now), local: e.local, networks };
    });
  }

  /** Called (coalesced) when forwarding entries, roles or liveness change. Returns the unsubscribe function. */
  onChange(cb: () => void): () => void {
    this.#listeners.add(cb);
    return () => void this.#listeners.delete(cb);
  }

  /** Drop remote entries not heard within `expireMs`. Runs by itself on a timer; exposed for tests. */
  sweep(): void {
    const now = this.#clock.now();
    let dropped = false;
    let next = Infinity;
    for (const [node, e] of this.#entries) {
      if (e.local) continue;
      if (!this.#isAlive(e, now)) {
        this.#entries.delete(node);
        dropped = true;
      } else {
        next = Math.min(next, e.heardAt + this.expireMs);
      }
    }
    if (dropped) this.#changed();
    if (next < Infinity) this.#scheduleSweep(next);
  }

  /** Cancel timers; entries stay (and stop expiring until the next remote announcement). */
  stop(): void {
    this.#sweepCancel?.();
    this.#sweepCancel = null;
    this.#sweepAt = Infinity;
    this.#notifyCancel?.();
    this.#notifyCancel = null;
  }

  #isAlive(e: HostEntry, now: number): boolean {
    return e.local || now - e.heardAt < this.expireMs;
  }

  /**
   * One timer for the earliest expiry. Not earlier than a twentieth of `expireMs` from now, so that
   * a large directory (whose earliest deadline moves with every announcement) sweeps at a bounded rate.
   */
  #scheduleSweep(at: number): void {
    if (this.#sweepCancel && this.#sweepAt <= at) return;
    this.#sweepCancel?.();
    const now = this.#clock.now();
    const when = Math.max(at, now + this.expireMs / 20);
    this.#sweepAt = when;
    this.#sweepCancel = this.#clock.setTimer(when - now, () => {
      this.#sweepCancel = null;
      this.#sweepAt = Infinity;
      this.sweep();
    });
  }

  #changed(): void {
    if (this.#notifyCancel || this.#listeners.size === 0) return;
    this.#notifyCancel = this.#clock.setTimer(this.#coalesceMs, () => {
      this.#notifyCancel = null;
      for (const cb of [...this.#listeners]) {
        try {
          cb();
        } catch {}
      }
    });
  }
}

function newer(a: HostAnnouncement, b: HostAnnouncement): boolean {
  return a.incarnation !== b.incarnation ? a.incarnation > b.incarnation : a.seq > b.seq;
}

/** Same networks with the same address sets (order ignored). */
function sameNets(a: HostNets, b: HostNets): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (!Object.hasOwn(b, k)) return false;
    const x = a[k]!;
    const y = b[k]!;
    if (x.length !== y.length) return false;
    if (x.every((v, i) => v === y[i])) continue;
    const s = new Set(x);
    if (!y.every((v) => s.has(v)) || s.size !== new Set(y).size) return false;
  }
  return true;
}

// ------------------------------------------------------------------------------------ gossip

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
