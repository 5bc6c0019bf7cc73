/**
 * `shoal daemon --force-new-cluster`: this manager survived the loss of its cluster's quorum. The
 * raft host rewrites the configuration to this node alone before it starts (recovery.ts); here the
 * cluster's objects follow: the other managers are removed, as `node rm --force` would (node
 * objects deleted, ids added to Cluster.RemovedNodes).
 *
 * Removed rather than kept as down managers or demoted to workers: a node whose Spec.Role is
 * manager is added back to raft by the leader (RaftMembers), and an old manager that comes back
 * holds a raft log of the old configuration; if two of them came back they would be a majority of
 * it and elect a leader of their own. Removed, every manager of the new cluster refuses them at
 * authentication, with the reason, so an old host must leave ("shoal cluster leave --force") and
 * join again with a fresh node id. Their tasks are rescheduled on the nodes left, as for any node
 * that is gone. Workers are kept: they hold no raft state and find this manager on their own.
 *
 * Safe to leave in a unit file: a force is recorded in <data-dir>/force-new-cluster.json (the raft
 * index and term of its last conf entry). A later start with the flag forces nothing when this
 * manager is already the only voter, nor when the recorded force is in the log and the cluster has
 * grown again since (then the flag is stale: it would remove the new managers); it says so and
 * starts normally. A force interrupted before the store followed is completed.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_REMOVED_NODES } from '../api/limits.ts';
import { InvalidArgumentError } from '../lib/errors.ts';
import type { ForceOutcome } from '../raft-host/recovery.ts';
import type { MemoryStore } from '../store/index.ts';
import { currentCluster } from './cluster.ts';

/** --force-new-cluster where it cannot apply: name the input and what to do instead. */
export function checkForceNewCluster(role: string | null, hasLog: boolean, dataDir: string): void {
  if (role === 'worker') {
    throw new InvalidArgumentError(`--force-new-cluster: this host is a worker and holds no raft log; run it on a surviving manager's --data-dir`);
  }
  if (!hasLog) {
    throw new InvalidArgumentError(`--force-new-cluster: ${dataDir} holds no cluster state to recover; start a surviving manager's --data-dir with it (or make a new cluster with --init)`);
  }
}

/** Removes every other manager from the store; returns their ids. Call once this node leads alone. */
export async function forgetLostManagers(store: MemoryStore, selfId: string, forcedOut: string[]): Promise<string[]> {
  const cluster = currentCluster(store);
  if (!cluster) return [];
  const lost = new Set(forcedOut.filter((id) => id !== selfId));
  for (const n of store.list('nodes')) if (n.Spec.Role === 'manager' && n.ID !== selfId) lost.add(n.ID);
  if (!lost.size) return [];
  await store.update((tx) => {
    const cur = tx.get('clusters', cluster.ID);
    if (!cur) return;
    for (const id of lost) if (tx.get('nodes', id)) tx.delete('nodes', id);
    const removed = [...(cur.RemovedNodes ?? []).filter((id) => !lost.has(id)), ...lost].slice(-MAX_REMOVED_NODES);
    tx.update('clusters', { ...cur, RemovedNodes: removed });
  });
  return [...lost];
}

export const FORCE_RECORD_FILE = 'force-new-cluster.json';

/** What a successful force left in the data dir. `done`: the store followed (managers removed). */
export interface ForceRecordFile { index: number; term: number; at: string; removed: string[]; done: boolean }

export function loadForceRecord(dataDir: string): ForceRecordFile | null {
  const f = join(dataDir, FORCE_RECORD_FILE);
  if (!existsSync(f)) return null;
  try {
    const r = JSON.parse(readFileSync(f, 'utf8')) as ForceRecordFile;
    if (!Number.isInteger(r.index) || !Number.isInteger(r.term) || !Array.isArray(r.removed)) return null;
    return r;
  } catch {
    return null; // unreadable: as if no force was recorded (the raft log decides alone)
  }
}

export function saveForceRecord(dataDir: string, r: ForceRecordFile): void {
  const f = join(dataDir, FORCE_RECORD_FILE);
  writeFileSync(`${f}.tmp`, `${JSON.stringify(r, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${f}.tmp`, f);
}

/**
 * After the raft host started with --force-new-cluster: the store follows a new force (or one
 * interrupted before it did), and the force is recorded. Returns the line for the daemon's log.
 */
export async function settleForce(store: MemoryStore, dataDir: string, selfId: string, outcome: ForceOutcome, previous: ForceRecordFile | null): Promise<string> {
  const file = join(dataDir, FORCE_RECORD_FILE);
  // Interrupted: the log holds the force and nothing after it (this node is still alone), but the
  // store has not followed. Once others have joined, removing "the other managers" would remove them.
  const interrupted = !!previous && outcome.previousInLog && !previous.done && outcome.kind === 'alone';
  if (outcome.kind === 'forced' || interrupted) {
    const rec: ForceRecordFile = outcome.kind === 'forced'
      ? { index: outcome.at!.index, term: outcome.at!.term, at: new Date().toISOString(), removed: outcome.out, done: false }
      : previous!;
    saveForceRecord(dataDir, rec);
    const lost = await forgetLostManagers(store, selfId, rec.removed);
    saveForceRecord(dataDir, { ...rec, removed: [...new Set([...rec.removed, ...lost])], done: true });
    const what = outcome.kind === 'forced' ? 'this node is now the only manager of its cluster, with all the state its log held' : `completed the force of ${rec.at} (raft index ${rec.index}), interrupted before`;
    return `--force-new-cluster: ${what}; removed the other managers (${lost.join(', ') || 'none'}). Join new managers with the manager token; start without --force-new-cluster from now on`;
  }
  const when = previous && outcome.previousInLog ? ` It was applied on ${previous.at} (raft index ${previous.index}, term ${previous.term}).` : '';
  if (outcome.kind === 'alone') {
    return `--force-new-cluster: nothing to force: this manager is already the only voter of its cluster.${when} Starting normally; start without --force-new-cluster from now on`;
  }
  return `--force-new-cluster: nothing to force: it was applied already and the cluster has grown again since.${when} The flag is ignored and this manager starts normally (forcing again would remove the new managers); remove it from the command line. If the cluster has lost its quorum again, delete ${file} and start with --force-new-cluster once more`;
}
