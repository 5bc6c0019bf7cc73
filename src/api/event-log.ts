/**
 * This manager's events: derived from every batch its store applies (the same on every manager),
 * kept in a bounded ring for `since`, and handed to subscribers through bounded queues.
 *
 * With no subscriber, a change goes into the ring as it is, with its batch's time and its task's
 * service name, and becomes an event only if a `since` replays it: every manager applies every
 * change, and building each one's event (its attributes, its name) was 10-12% of a manager's CPU
 * while it applied a burst of 10,000 tasks that nobody watched (docs/scale.md, stop 32).
 */
import type { ChangeEvent, MemoryStore } from '../store/index.ts';
import type { Service, Task } from '../types/index.ts';
import { type BatchTime, batchTime, deriveEvent, isEvent, type ObjectChange, serviceNames, type SwarmEvent } from './event-derive.ts';

/** Events kept for `since`: the newest 10 000, whatever their age; older ones are not replayed. */
export const EVENT_HISTORY = 10_000;
/** Events a subscriber may be behind before it is dropped (a client that stopped reading). */
export const SUBSCRIBER_QUEUE = 1_000;

const EVENT_TABLES = new Set(['services', 'nodes', 'tasks', 'networks', 'secrets', 'configs']);
/** Names of removed services remembered, so their tasks' last events (shutdown, remove) still name them. */
const REMOVED_NAMES = 1_024;

/**
 * One reader of the stream. Events wait in a queue of at most `bound`; one more and the subscriber
 * is `lagged`: it takes nothing further, its reader gets what was queued and then the end.
 */
export class Subscriber {
  #queue: SwarmEvent[] = [];
  #wake: (() => void) | null = null;
  lagged = false;
  closed = false;

  constructor(readonly bound: number, private readonly match: (e: SwarmEvent) => boolean, private readonly onClose: (s: Subscriber) => void) {}

  get queued(): number {
    return this.#queue.length;
  }

  offer(e: SwarmEvent): void {
    if (this.closed || this.lagged || !this.match(e)) return;
    if (this.#queue.length >= this.bound) {
      this.lagged = true;
      this.onClose(this);
    } else this.#queue.push(e);
    this.#notify();
  }

  /** Waits for events; an empty array means the stream is over (closed, or lagged and drained). */
  async take(): Promise<SwarmEvent[]> {
    while (this.#queue.length === 0 && !this.closed && !this.lagged) await new Promise<void>((r) => (this.#wake = r));
    return this.#queue.splice(0);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(this);
    this.#notify();
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }
}

/** A change kept before anyone asked for its event, with what deriving it later needs. */
interface Deferred {
  change: ObjectChange;
  bt: BatchTime;
  /** A task's service name as it was when the change was applied. */
  service: string | undefined;
}

export class EventLog {
  /** Events, and changes to derive one from when replayed (each then replaced by its event). */
  #ring: (SwarmEvent | Deferred)[] = [];
  #subscribers = new Set<Subscriber>();
  #pending: Exclude<ChangeEvent, { kind: 'commit' }>[] = [];
  #removedNames = new Map<string, string>();
  readonly #unwatch: () => void;

  constructor(store: MemoryStore, readonly history = EVENT_HISTORY) {
    this.#unwatch = store.watch((ev) => {
      if (ev.kind !== 'commit') {
        if (EVENT_TABLES.has(ev.table)) this.#pending.push(ev);
        return;
      }
      if (this.#pending.length === 0) return;
      const changes = this.#pending;
      this.#pending = [];
      for (const c of changes) if (c.kind === 'delete' && c.table === 'services') this.#rememberRemoved(c.object.ID, (c.object as Service).Spec.Name);
      const serviceName = serviceNames(changes, (id: string) => store.get('services', id)?.Spec.Name ?? this.#removedNames.get(id));
      const bt = batchTime(ev.at);
      for (const c of changes) {
        if (!isEvent(c)) continue;
        if (this.#subscribers.size > 0) this.publish(deriveEvent(c, bt, serviceName)!);
        else this.#keep({ change: c, bt, service: c.table === 'tasks' ? serviceName((c.object as Task).ServiceID) : undefined });
      }
    });
  }

  #rememberRemoved(id: string, name: string): void {
    this.#removedNames.set(id, name);
    if (this.#removedNames.size > REMOVED_NAMES) this.#removedNames.delete(this.#removedNames.keys().next().value!);
  }

  publish(e: SwarmEvent): void {
    this.#keep(e);
    for (const s of this.#subscribers) s.offer(e);
  }

  #keep(k: SwarmEvent | Deferred): void {
    this.#ring.push(k);
    // Trimmed in steps of a quarter, so a push is not a copy of the whole ring.
    if (this.#ring.length > this.history + (this.history >> 2)) this.#ring.splice(0, this.#ring.length - this.history);
  }

  /** Kept events with `sinceNano <= timeNano <= untilNano`, oldest first. */
  replay(sinceNano: bigint, untilNano?: bigint): SwarmEvent[] {
    const ring = this.#ring;
    const out: SwarmEvent[] = [];
    for (let i = Math.max(0, ring.length - this.history); i < ring.length; i++) {
      const k = ring[i]!;
      const nano = 'change' in k ? k.bt.timeNano : k.timeNano;
      if (nano < sinceNano || (untilNano !== undefined && nano > untilNano)) continue;
      if ('change' in k) {
        const e = deriveEvent(k.change, k.bt, () => k.service)!;
        ring[i] = e;
        out.push(e);
      } else out.push(k);
    }
    return out;
  }

  /** Events from now on that `match`. Subscribe and replay in the same turn: nothing is missed or doubled. */
  subscribe(match: (e: SwarmEvent) => boolean, bound = SUBSCRIBER_QUEUE): Subscriber {
    const s = new Subscriber(bound, match, (x) => this.#subscribers.delete(x));
    this.#subscribers.add(s);
    return s;
  }

  get subscribers(): number {
    return this.#subscribers.size;
  }

  stop(): void {
    this.#unwatch();
    for (const s of [...this.#subscribers]) s.close();
  }
}
