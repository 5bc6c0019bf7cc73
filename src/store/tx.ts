import { NotFoundError } from '../lib/errors.ts';
import type { Meta } from '../types/index.ts';
import { singular, type TableName, type Tables, type TxAction } from './actions.ts';

const DELETED = Symbol('deleted');

/**
 * What a transaction reads through to: the committed tables. MemoryStore is one; the transaction
 * names only this so the store depends on the transaction and not the other way round.
 */
export interface TableReader {
  get<T extends TableName>(table: T, id: string): Tables[T] | undefined;
}

/**
 * A transaction's view: reads see the transaction's own writes; writes are recorded as actions,
 * each carrying the version that was read (checked again when the batch is applied).
 */
export class Tx {
  private writes = new Map<string, Meta | typeof DELETED>();
  /**
   * The actions, in order, keyed `w:<table>/<id>` (a create or an update) or `d:<table>/<id>`: a
   * transaction of thousands of writes finds an earlier write of the same object without a scan.
   */
  private log = new Map<string, TxAction>();

  constructor(private readonly store: TableReader) {}

  get<T extends TableName>(table: T, id: string): Tables[T] | undefined {
    const w = this.writes.get(`${table}/${id}`);
    if (w === DELETED) return undefined;
    return (w as Tables[T] | undefined) ?? this.store.get(table, id);
  }

  create<T extends TableName>(table: T, object: Tables[T]): Tables[T] {
    const o = { ...object, Version: { Index: 0 } } as Tables[T];
    const key = `${table}/${o.ID}`;
    this.writes.set(key, o);
    // A second create of one id is kept as its own action: apply() refuses the batch for it.
    const w = `w:${key}`;
    this.log.set(this.log.has(w) ? `${w}#${this.log.size}` : w, { op: 'create', table, object: o });
    return o;
  }

  /** `object.Version.Index` must be the version the caller read: that is what makes it optimistic. */
  update<T extends TableName>(table: T, object: Tables[T]): Tables[T] {
    const key = `${table}/${object.ID}`;
    if (this.writes.get(key) === DELETED || !this.get(table, object.ID)) throw new NotFoundError(`${singular(table)} ${object.ID} not found`);
    const prev = this.log.get(`w:${key}`) as Extract<TxAction, { op: 'create' | 'update' }> | undefined;
    // A second write to the same object in one transaction folds into the first (Map.set keeps its place).
    if (prev) this.log.set(`w:${key}`, { ...prev, object: { ...object, Version: prev.object.Version } });
    else this.log.set(`w:${key}`, { op: 'update', table, object });
    this.writes.set(key, object);
    return object;
  }

  delete(table: TableName, id: string): void {
    const cur = this.get(table, id);
    if (!cur) throw new NotFoundError(`${singular(table)} ${id} not found`);
    const key = `${table}/${id}`;
    const prev = this.log.get(`w:${key}`);
    this.log.delete(`w:${key}`);
    if (prev?.op !== 'create') {
      const base = this.store.get(table, id)!;
      this.log.set(`d:${key}`, { op: 'delete', table, id, version: base.Version.Index });
    }
    this.writes.set(key, DELETED);
  }

  actions(): TxAction[] {
    return [...this.log.values()];
  }
}
