import type { Cluster, Config, Meta, Network, Node, Secret, Service, Task } from '../types/index.ts';

export interface Tables {
  clusters: Cluster;
  nodes: Node;
  services: Service;
  tasks: Task;
  networks: Network;
  secrets: Secret;
  configs: Config;
}
export type TableName = keyof Tables;
export const TABLES: TableName[] = ['clusters', 'nodes', 'services', 'tasks', 'networks',
  'secrets', 'configs'];

/**
 * One write. `update` and `delete` carry the Version.Index the writer read; apply() refuses the whole
 * batch when any of them is stale (optimistic concurrency, checked deterministically on every replica).
 */
export type Action =
  | { op: 'create'; table: TableName; object: Meta }
  | { op: 'update'; table: TableName; object: Meta }
  | { op: 'delete'; table: TableName; id: string; version: number }
  /**
   * An update of a task as what changed: the top-level members `set` (whole) and those `unset`, on
   * top of the version the writer read (the same object on every replica, or the batch is refused).
   * The store writes it instead of an `update` when every manager can apply it (src/store/patch.ts).
   */
  | { op: 'patch'; table: TableName; id: string; version: number; set: Record<string, unknown>; unset?: string[] };

/** What a transaction records: patches are made from updates only as the store writes them. */
export type TxAction = Exclude<Action, { op: 'patch' }>;

/** What goes into the log: a batch of actions and the proposer's clock reading. */
export interface Batch {
  at: string;
  actions: Action[];
}

export type ApplyResult = { ok: true; index: number } | { ok: false; status: 404 | 409; message: string };

export type ChangeEvent =
  | { kind: 'create'; table: TableName; object: Meta; index: number }
  | { kind: 'update'; table: TableName; object: Meta; old: Meta; index: number }
  | { kind: 'delete'; table: TableName; object: Meta; index: number }
  /** After every applied batch: lets a watcher act once per batch rather than once per object. `at` is the batch's time. */
  | { kind: 'commit'; index: number; at: string };

export function singular(table: TableName): string {
  return table === 'services' ? 'service' : table.slice(0, -1);
}
