import { NotFoundError } from '../lib/errors.ts';
import type { Meta } from '../types/index.ts';
import { type Action, singular, type TableName, type Tables } from './actions.ts';

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
  private log: Action[] = [];

  constructor(private readonly store: TableReader) {}

  get<T extends TableName>(table: T, id: string): Tables[T] | undefined {
    const w = this.writes.get(`${table}/${id}`);
    if (w === DELETED) return undefined;
    return (w as Tables[T] | undefined) ?? this.store.get(table, id);
  }

  create<T extends TableName>(table: T, object: Tables[T]): Tables[T] {
    const o = { ...object, Version: { Index: 0 } } as Tables[T];
    this.writes.set(`${table}/${o.ID}`, o);
    this.log.push({ op: 'create', table, object: o });
    return o;
  }

  /** `object.Version.Index` must be the version the caller read: that is what makes it optimistic. */
  update<T extends TableName>(table: T, object: Tables[T]): Tables[T] {
    const key = `${table}/${object.ID}`;
    if (this.writes.get(key) === DELETED || !this.get(table, object.ID)) throw new NotFoundError(`${singular(table)} ${object.ID} not found`);
    const pending = this.log.findIndex((a) => a.op !== 'delete' && a.table === table && a.object.ID === object.ID);
    if (pending >= 0) {
      // A second write to the same object in one transaction folds into the first.
      const prev = this.log[pending] as Extract<Action, { op: 'create' | 'update' }>;
      this.log[pending] = { ...prev, object: { ...object, Version: prev.object.Version } };
    } else {
      this.log.push({ op: 'update', table, object });
    }
    this.writes.set(key, object);
    return object;
  }

  delete(table: TableName, id: string): void {
    const cur = this.get(table, id);
    if (!cur) throw new NotFoundError(`${singular(table)} ${id} not found`);
    const key = `${table}/${id}`;
    const created = this.log.findIndex((a) => a.op === 'create' && a.table === table && a.object.ID === id);
    if (created >= 0) this.log.splice(created, 1);
    else {
      this.log = this.log.filter((a) => !(a.op === 'update' && a.table === table && a.object.ID === id));
      const base = this.store.get(table, id)!;
      this.log.push({ op: 'delete', table, id, version: base.Version.Index });
    }
    this.writes.set(key, DELETED);
  }

  actions(): Action[] {
    return this.log;
  }
}
