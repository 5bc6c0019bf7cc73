/**
 * The latest host announcement per node, as every host keeps it: liveness (heard within `expireMs`)
 * and the overlay's forwarding entries (task address → host address) come from here. Filled by
 * HostGossip; read by the worker's NetworkAgent and by status.
 */
import { type Clock, systemClock } from '../manager/dispatcher/clock.ts';
import { type HostAnnouncement, type HostRole, sameNets } from './host-announcement.ts';

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
