import { decode, encode, encodeEntry } from '../lib/codec.ts';
import { ConflictError, NotFoundError, ShoalError } from '../lib/errors.ts';
import { storeWrites } from '../lib/metrics.ts';
import type { Config, Meta, Network, Node, Secret, Service, Task } from '../types/index.ts';
import { type Action, type ApplyResult, type Batch, type ChangeEvent, singular, TABLES, type TableName, type Tables } from './actions.ts';
import { type Proposer, type StateMachine, UnreadableEntryError } from './proposer.ts';
import { checkNetworkActions } from './network-rules.ts';
import { checkSecretActions, touchesSecrets } from './secret-rules.ts';
import { managersApplyPatches, patched, taskPatch } from './patch.ts';
import { shareMembers } from './share.ts';
import { Tx } from './tx.ts';

type Listener = (ev: ChangeEvent) => void;

/**
 * Most bytes of one batch of several actions. A batch is one raft entry, and an entry reaches the
 * other managers whole, in one append message (at most this many bytes of entries, the daemon's
 * maxSizePerMsg, but always at least one entry) inside one frame of at most 4 MiB (MAX_FRAME_BYTES,
 * src/lib/frames.ts): a bigger entry would never reach them. 3 MiB leaves room for the message
 * around it. Writers of many objects split their writes to stay under it (writeTasks and writeAll
 * in the stages aim at ~1 000 tasks).
 */
export const MAX_BATCH_BYTES = 3 * 1024 * 1024;

/**
 * The distinct `table/op` keys of a batch's actions. A key is built only where the table or op
 * changes from the action before: a batch of 1,000 task writes builds one, not 1,000 (45 µs).
 */
function kindsOf(actions: readonly Action[]): string[] {
  const kinds: string[] = [];
  let table = '';
  let op = '';
  for (const a of actions) {
    if (a.table === table && a.op === op) continue;
    table = a.table;
    op = a.op;
    const key = `${table}/${op}`;
    if (!kinds.includes(key)) kinds.push(key);
  }
  return kinds;
}

/** A transaction of several actions that encodes to more than the store's batch bound: split it. */
export class BatchTooLargeError extends ShoalError {
  override readonly status = 413;
}

/** Secondary indexes: key(object) → ids. Only what the stages and the API look up. */
const INDEXES: { [T in TableName]?: Record<string, (o: Tables[T]) => string | undefined> } = {
  tasks: {
    service: (t: Task) => t.ServiceID,
    node: (t: Task) => t.NodeID || undefined,
  },
  services: {
    name: (s: Service) => s.Spec.Name,
  },
  networks: {
    name: (n: Network) => n.Spec.Name,
  },
  secrets: { name: (o: Secret) => o.Spec.Name },
  configs: { name: (o: Config) => o.Spec.Name },
};

/** INDEXES as lists, with each index's name in the `indexes` map. */
const INDEX_DEFS: { [T in TableName]?: { name: string; fn: (o: Meta) => string | undefined }[] } = Object.fromEntries(
  Object.entries(INDEXES).map(([table, defs]) => [table, Object.entries(defs as Record<string, (o: Meta) => string | undefined>).map(([key, fn]) => ({ name: `${table}.${key}`, fn }))]),
);

/**
 * In-memory tables of the cluster state. Reads are synchronous and consistent (single-threaded).
 * Writes go through `update()`: the transaction's actions are proposed, and the tables only change
 * when the proposer hands a committed entry to `apply()` — the same path on every replica.
 */
export class MemoryStore implements StateMachine {
  private tables = new Map<TableName, Map<string, Meta>>();
  private indexes = new Map<string, Map<string, Set<string>>>();
  /** Tasks counted by service, then by `DesiredState|Status.State`: `service ls` without reading every task. */
  private taskCounts = new Map<string, Map<string, number>>();
  private listeners = new Set<Listener>();
  private appliedIndex = 0;
  proposer: Proposer | null = null;
  /** Bound on a batch of several actions (MAX_BATCH_BYTES; tests lower it). A single action is never refused for size. */
  maxBatchBytes = MAX_BATCH_BYTES;
  /**
   * Whether task updates are written as patches (src/store/patch.ts): 'auto' while every manager's
   * description lists the feature (what the daemons use); tests pin it.
   */
  taskPatches: 'auto' | boolean = 'auto';
  /** managersApplyPatches over the nodes table, recomputed after a write to it (null: not known). */
  private patchGate: boolean | null = null;
  /** Writes on their way through this replica, by `table/op` of their actions (see proposing()). */
  private readonly proposed = new Map<string, number>();
  private readonly fewerWaiters = new Map<string, Set<() => void>>();

  constructor() {
    this.reset();
  }

  // ------------------------------------------------------------------ reads

  get<T extends TableName>(table: T, id: string): Tables[T] | undefined {
    return this.tables.get(table)!.get(id) as Tables[T] | undefined;
  }

  list<T extends TableName>(table: T): Tables[T][] {
    return [...this.tables.get(table)!.values()] as Tables[T][];
  }

  /** Objects whose indexed `key` equals `value` (see INDEXES). */
  by<T extends TableName>(table: T, key: string, value: string): Tables[T][] {
    const ids = this.indexes.get(`${table}.${key}`)?.get(value);
    if (!ids) return [];
    const t = this.tables.get(table)!;
    const out: Tables[T][] = [];
    for (const id of ids) out.push(t.get(id)! as Tables[T]);
    return out;
  }

  /** How many tasks of a service are in each `DesiredState|Status.State` (only non-zero counts). */
  countTasks(serviceId: string): ReadonlyMap<string, number> {
    return this.taskCounts.get(serviceId) ?? new Map();
  }

  size(table: TableName): number {
    return this.tables.get(table)!.size;
  }

  get index(): number {
    return this.appliedIndex;
  }

  /**
   * How many writes of an `op` of `table` are on their way through this replica: proposed (update()
   * called) and not yet applied or refused, or announced and not yet settled. A stage reads it to
   * gather what is already on its way (issue #18).
   */
  proposing(table: TableName, op: Action['op']): number {
    return this.proposed.get(`${table}/${op}`) ?? 0;
  }

  /**
   * A write of an `op` of `table` is being prepared (an API call validating it before its update()):
   * proposing() counts it until the returned function is called (once; later calls do nothing).
   */
  announce(table: TableName, op: Action['op']): () => void {
    const key = [`${table}/${op}`];
    this.countProposed(key, 1);
    let settled = false;
    return () => {
      if (settled) return;
      settled = true;
      this.countProposed(key, -1);
    };
  }

  /**
   * Calls `fn` once one write of an `op` of `table` on its way is no longer (applied, refused or
   * settled), or at once when none is on its way; returns the function that takes it back, so that
   * a waiter that gave up holds nothing.
   */
  whenFewer(table: TableName, op: Action['op'], fn: () => void): () => void {
    const key = `${table}/${op}`;
    if (!this.proposed.get(key)) {
      fn();
      return () => {};
    }
    let set = this.fewerWaiters.get(key);
    if (!set) this.fewerWaiters.set(key, (set = new Set()));
    set.add(fn);
    return () => void this.fewerWaiters.get(key)?.delete(fn);
  }

  private countProposed(keys: readonly string[], by: 1 | -1): void {
    for (const key of keys) {
      const n = (this.proposed.get(key) ?? 0) + by;
      if (n > 0) this.proposed.set(key, n);
      else this.proposed.delete(key);
      if (by > 0) continue;
      const waiters = this.fewerWaiters.get(key);
      if (!waiters) continue;
      this.fewerWaiters.delete(key);
      for (const w of waiters) w();
    }
  }

  /** Wait until this replica has applied everything committed so far (linearizable reads). */
  async sync(signal?: AbortSignal): Promise<void> {
    await this.proposer?.readBarrier?.(signal);
  }

  // ------------------------------------------------------------------ writes

  /**
   * Run `fn` against a transactional view and commit what it wrote as one atomic batch.
   * Throws ConflictError when anything it read was changed meanwhile, NotFoundError when an
   * object it updates or deletes is gone.
   */
  async update<R>(fn: (tx: Tx) => R, signal?: AbortSignal): Promise<R> {
    const tx = new Tx(this);
    const result = fn(tx);
    let actions: Action[] = tx.actions();
    if (actions.length === 0) return result;
    if (this.writesPatches()) actions = actions.map((a) => this.asPatch(a));
    if (!this.proposer) throw new ShoalError('store has no proposer');
    const batch: Batch = { at: new Date().toISOString(), actions };
    const entry = encodeEntry(batch);
    if (actions.length > 1 && entry.byteLength > this.maxBatchBytes) {
      throw new BatchTooLargeError(`a write of ${actions.length} objects encodes to ${entry.byteLength} bytes, over the ${this.maxBatchBytes}-byte bound of one log entry; write them in smaller transactions`);
    }
    let res: ApplyResult;
    const kinds = kindsOf(actions);
    this.countProposed(kinds, 1);
    try {
      res = (await this.proposer.propose(entry, signal, batch)) as ApplyResult;
    } catch (err) {
      storeWrites.inc({ result: 'unavailable' });
      throw err;
    } finally {
      this.countProposed(kinds, -1);
    }
    storeWrites.inc({ result: res.ok ? 'ok' : res.status === 404 ? 'not_found' : 'conflict' });
    if (!res.ok) throw res.status === 404 ? new NotFoundError(res.message) : new ConflictError(res.message);
    return result;
  }

  private writesPatches(): boolean {
    if (this.taskPatches !== 'auto') return this.taskPatches;
    return (this.patchGate ??= managersApplyPatches(this.tables.get('nodes')!.values() as Iterable<Node>));
  }

  /** A task update as a patch of the committed version it was read at (else as it is: apply() refuses it). */
  private asPatch(a: Action): Action {
    if (a.op !== 'update' || a.table !== 'tasks') return a;
    const base = this.get('tasks', a.object.ID);
    if (!base || base.Version.Index !== a.object.Version.Index) return a;
    return taskPatch(base, a.object as Task);
  }

  // ------------------------------------------------------------------ watch

  /** Called synchronously after each change is applied; returns the unsubscribe function. */
  watch(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ------------------------------------------------------------------ state machine

  /**
   * `local`: the batch `entry` encodes, when this replica proposed it (update() passes it along):
   * not decoded again. The leader decoded every entry it had just encoded, a tenth of its CPU
   * while it placed tasks (docs/scale.md, stop 29). What a writer handed to a transaction is then
   * the store's: no writer changes an object after writing it, as none changes one it read.
   */
  apply(index: number, entry: Uint8Array, local?: unknown): ApplyResult {
    if (index <= this.appliedIndex) return { ok: true, index };
    let batch: Batch;
    try {
      batch = (local as Batch | undefined) ?? decode<Batch>(entry);
    } catch {
      this.appliedIndex = index; // a foreign or empty entry: nothing for the store
      return { ok: false, status: 409, message: 'undecodable entry' };
    }
    if (!batch || !Array.isArray(batch.actions)) {
      this.appliedIndex = index;
      return { ok: true, index };
    }
    const refusal = this.check(batch.actions);
    this.appliedIndex = index;
    if (refusal) return refusal;
    const events: ChangeEvent[] = [];
    const strings = new Map<string, string>();
    for (const a of batch.actions) events.push(this.applyAction(a, index, batch.at, strings));
    events.push({ kind: 'commit', index, at: batch.at });
    for (const ev of events) for (const l of this.listeners) l(ev);
    return { ok: true, index };
  }

  private check(actions: Action[]): ApplyResult | null {
    const created = new Set<string>();
    const names = new Map<string, string>(); // service names taken within this batch
    for (const a of actions) {
      const t = this.tables.get(a.table);
      if (!t) return { ok: false, status: 409, message: `unknown table ${a.table}` };
      if (a.op === 'create') {
        const key = `${a.table}/${a.object.ID}`;
        if (t.has(a.object.ID) || created.has(key)) return { ok: false, status: 409, message: `${a.table} ${a.object.ID} already exists` };
        created.add(key);
      } else if (a.op === 'update' || a.op === 'delete' || a.op === 'patch') {
        if (a.op === 'patch' && a.table !== 'tasks') return { ok: false, status: 409, message: `a patch of ${a.table}: only tasks are written as patches` };
        const id = a.op === 'update' ? a.object.ID : a.id;
        const cur = t.get(id);
        if (!cur) return { ok: false, status: 404, message: `${singular(a.table)} ${id} not found` };
        const want = a.op === 'update' ? a.object.Version.Index : a.version;
        if (cur.Version.Index !== want)
          return { ok: false, status: 409, message: `update out of sequence: ${singular(a.table)} ${id} is at version ${cur.Version.Index}, not ${want}` };
      } else {
        // Every replica must agree on every entry: one this build cannot read stops it, loudly,
        // rather than being skipped here and applied by the others.
        throw new UnreadableEntryError(`a log entry holds a "${(a as { op: unknown }).op}" action, which this build of shoal cannot apply: run the build the other managers run`);
      }
      if (a.table === 'services' && (a.op === 'create' || a.op === 'update')) {
        const s = a.object as Service;
        const name = s.Spec.Name;
        const holder = this.by('services', 'name', name).find((o) => o.ID !== s.ID);
        const deleted = holder && actions.some((b) => b.op === 'delete' && b.table === 'services' && b.id === holder.ID);
        if ((holder && !deleted) || (names.has(name) && names.get(name) !== s.ID))
          return { ok: false, status: 409, message: `service name "${name}" is already in use` };
        names.set(name, s.ID);
      }
    }
    const secretRefusal = actions.some(touchesSecrets) ? checkSecretActions(actions, this) : null;
    if (secretRefusal) return secretRefusal;
    const touchesNetworks = (a: Action) => a.table === 'networks' || (a.table === 'services' && (a.op === 'create' || a.op === 'update') && !!(a.object as Service).Spec.TaskTemplate.Networks?.length);
    if (actions.some(touchesNetworks)) return checkNetworkActions(actions, this.list('networks'), this.list('services'));
    return null;
  }

  private applyAction(a: Action, index: number, at: string, strings: Map<string, string>): ChangeEvent {
    const t = this.tables.get(a.table)!;
    if (a.table === 'nodes') this.patchGate = null;
    if (a.op === 'delete') {
      const old = t.get(a.id)!;
      t.delete(a.id);
      this.reindex(a.table, undefined, old);
      if (a.table === 'tasks') this.countTask(old as Task, -1);
      return { kind: 'delete', table: a.table, object: old, index };
    }
    const old = t.get(a.op === 'patch' ? a.id : a.object.ID);
    // A patch's members are shared with the version it patches; the rest are that version's own.
    const next = a.op === 'patch' ? patched(old!, shareMembers(a.set, old, strings), a.unset) : shareMembers(a.object, old ?? this.sibling(a.table, a.object), strings);
    const obj: Meta = {
      ...next,
      Version: { Index: index },
      CreatedAt: old?.CreatedAt ?? (next.CreatedAt || at),
      UpdatedAt: at,
    };
    t.set(obj.ID, obj);
    this.reindex(a.table, obj, old);
    if (a.table === 'tasks') {
      if (old) this.countTask(old as Task, -1);
      this.countTask(obj as Task, 1);
    }
    return old ? { kind: 'update', table: a.table, object: obj, old, index } : { kind: 'create', table: a.table, object: obj, index };
  }

  /** For a new task: another task of its service, whose spec it most likely shares. */
  private sibling(table: TableName, o: Meta): Meta | undefined {
    if (table !== 'tasks') return undefined;
    const ids = this.indexes.get('tasks.service')?.get((o as Task).ServiceID);
    const id = ids?.values().next().value;
    return id === undefined ? undefined : this.tables.get('tasks')!.get(id);
  }

  snapshot(): Uint8Array {
    const data: Record<string, Meta[]> = {};
    for (const name of TABLES) data[name] = [...this.tables.get(name)!.values()];
    return encode({ index: this.appliedIndex, tables: data });
  }

  restore(snapshot: Uint8Array, index: number): void {
    const snap = decode<{ index: number; tables: Record<string, Meta[]> }>(snapshot);
    this.reset();
    this.patchGate = null;
    const strings = new Map<string, string>();
    for (const name of TABLES) {
      for (const o of snap.tables[name] ?? []) {
        shareMembers(o, this.sibling(name, o), strings);
        this.tables.get(name)!.set(o.ID, o);
        this.reindex(name, o);
        if (name === 'tasks') this.countTask(o as Task, 1);
      }
    }
    this.appliedIndex = index;
  }

  private reset(): void {
    for (const name of TABLES) this.tables.set(name, new Map());
    this.indexes.clear();
    this.taskCounts.clear();
    this.appliedIndex = 0;
  }

  private countTask(t: Task, delta: 1 | -1): void {
    let counts = this.taskCounts.get(t.ServiceID);
    if (!counts) this.taskCounts.set(t.ServiceID, (counts = new Map()));
    const key = `${t.DesiredState}|${t.Status?.State}`;
    const n = (counts.get(key) ?? 0) + delta;
    if (n > 0) counts.set(key, n);
    else counts.delete(key);
    if (counts.size === 0) this.taskCounts.delete(t.ServiceID);
  }

  /** Index `o` under each key whose value differs from `old`'s (all of them for a new object; none when `o` is undefined: a delete). */
  private reindex(table: TableName, o: Meta | undefined, old?: Meta): void {
    const defs = INDEX_DEFS[table];
    if (!defs) return;
    for (const { name, fn } of defs) {
      const v = o && fn(o);
      const was = old && fn(old);
      if (v === was && o && old) continue;
      let idx = this.indexes.get(name);
      if (!idx) this.indexes.set(name, (idx = new Map()));
      if (old && was !== undefined) {
        const set = idx.get(was);
        set?.delete(old.ID);
        if (set?.size === 0) idx.delete(was);
      }
      if (o && v !== undefined) {
        let set = idx.get(v);
        if (!set) idx.set(v, (set = new Set()));
        set.add(o.ID);
      }
    }
  }
}

