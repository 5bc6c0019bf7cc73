/**
 * `shoal daemon --restore FILE --force-new-cluster`: a new one-manager cluster from a backup
 * (src/backup/format.ts), with every object it holds: the cluster (ID, spec, root CA, join tokens),
 * services, networks, secrets, configs, tasks and nodes.
 *
 * Three steps, so that bad input changes nothing:
 *  1. prepareRestore, before the daemon touches its data dir: the file is read and checked whole
 *     (frame, checksum, decryption, the snapshot against its header) and the data dir judged;
 *     any refusal leaves both as they were (the data dir is not even created).
 *  2. seedRestoredLog, before the raft log is opened: the backup's store snapshot becomes the raft
 *     snapshot of a new log, at the backup's own index and term, with this node as the only voter.
 *     Objects keep their Version.Index, CreatedAt and UpdatedAt, and the new log goes on after
 *     that index, so versions only grow across the restore.
 *  3. settleRestore, once this node leads: this host's node object is added (as a lone leader's
 *     at init), the old managers are removed as `--force-new-cluster` removes them (node objects
 *     deleted, ids in Cluster.RemovedNodes, so old hosts that come back are refused rather than
 *     outvoting the new cluster), and the old workers are marked down until they reconnect, so
 *     the orchestrator replaces their tasks on the nodes of the new cluster at once.
 *
 * The data dir: an empty one (or one in no cluster: no raft/ nor cluster.json), or one of a manager
 * of the backup's own cluster, whose raft log is then set aside as raft.replaced-<time> (kept, never
 * deleted). Another cluster's data dir is refused, with or without --force-new-cluster, naming both
 * clusters. A restore is recorded in <data-dir>/restore.json: a later start with the same flags
 * (a unit file) finds the same backup there and starts normally instead of rolling back again.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BackupHeader, openBackup } from '../backup/format.ts';
import { MAX_REMOVED_NODES } from '../api/limits.ts';
import { InvalidArgumentError, ShoalError } from '../lib/errors.ts';
import { NodeDisk } from '../raft-host/disk.ts';
import { Wal } from '../raft-host/wal.ts';
import { aesGcmCipher } from '../raft-host/wal-cipher.ts';
import type { MemoryStore } from '../store/index.ts';
import { currentCluster, leadingManagerNode } from './cluster.ts';
import { describeHost } from './describe.ts';
import { FORCE_RECORD_FILE } from './force-new-cluster.ts';
import { loadMembership, MEMBERSHIP_FILE } from './membership.ts';

export interface RestoreRequest {
  /** The backup file. */
  file: string;
  /** The cluster's unlock key, for a backup taken with autolock on. */
  unlockKey?: string;
}

export interface PreparedRestore {
  file: string;
  header: BackupHeader;
  /** The store snapshot (MemoryStore.snapshot() bytes); emptied once written to the new log. */
  snapshot: Uint8Array;
  /** SHA-256 of the file, by which restore.json recognises the same backup. */
  digest: string;
  /** The data dir is a manager of the backup's cluster: its raft log is set aside. */
  replaces: boolean;
  /** What restore.json says of this backup in this data dir: nothing, seeded (settle again), or done. */
  recorded: 'no' | 'seeded' | 'done';
}

export const RESTORE_RECORD_FILE = 'restore.json';

interface RestoreRecord { ClusterID: string; RaftIndex: number; Sha256: string; File: string; At: string; Settled: boolean }

/** Step 1: everything checked, nothing written. Throws an error naming the input at fault. */
export function prepareRestore(dataDir: string, req: RestoreRequest, forceNewCluster: boolean): PreparedRestore {
  const name = `--restore ${req.file}`;
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(req.file);
  } catch (e) {
    throw new InvalidArgumentError(`${name}: cannot read it (${(e as Error).message})`);
  }
  const { header, snapshot } = openBackup(bytes, name, req.unlockKey);
  const digest = createHash('sha256').update(bytes).digest('hex');
  const base = { file: req.file, header, snapshot, digest };

  const record = loadRecord(dataDir);
  if (record && record.Sha256 === digest && record.ClusterID === header.ClusterID && existsSync(join(dataDir, 'raft'))) {
    return { ...base, replaces: false, recorded: record.Settled ? 'done' : 'seeded' };
  }
  const membership = existsSync(join(dataDir, MEMBERSHIP_FILE)) ? loadMembership(dataDir) : null;
  if (membership && membership.ClusterID !== header.ClusterID) {
    throw new ShoalError(
      `${name}: ${dataDir} belongs to cluster ${membership.ClusterID} (this host is a ${membership.Role} of it), the backup is of cluster ${header.ClusterID}; ` +
        `nothing was changed. Restore into an empty --data-dir, or leave cluster ${membership.ClusterID} first ("shoal cluster leave --force")`,
    );
  }
  if (membership?.Role === 'worker') {
    throw new ShoalError(`${name}: ${dataDir} is a worker of cluster ${header.ClusterID} and holds no raft log; restore into an empty --data-dir or a manager's`);
  }
  if (!membership) {
    for (const f of ['raft', 'state.db']) {
      if (existsSync(join(dataDir, f))) {
        throw new ShoalError(`${name}: ${dataDir} already holds cluster state (${join(dataDir, f)}) of no cluster this host knows it is in; nothing was changed. Restore into an empty --data-dir, or remove ${join(dataDir, f)} if nothing in it is needed`);
      }
    }
  }
  if (!forceNewCluster) {
    const what = membership ? `replaces the state of this manager of cluster ${header.ClusterID} with the backup's` : `makes this host the only manager of cluster ${header.ClusterID} (its other managers are removed)`;
    throw new InvalidArgumentError(`${name} needs --force-new-cluster: restoring ${what}`);
  }
  return { ...base, replaces: !!membership, recorded: 'no' };
}

/** Step 2, before the raft log is opened: a new log whose snapshot is the backup, this node its only voter. */
export function seedRestoredLog(dataDir: string, nodeId: string, p: PreparedRestore, dataKey: Uint8Array, now = new Date()): string | null {
  if (p.recorded !== 'no') return null;
  const dir = join(dataDir, 'raft');
  let setAside: string | null = null;
  if (p.replaces && existsSync(dir)) {
    setAside = join(dataDir, `raft.replaced-${now.toISOString().replace(/[:.]/g, '-')}`);
    renameSync(dir, setAside);
  }
  rmSync(join(dataDir, FORCE_RECORD_FILE), { force: true }); // of the log set aside, not of this one
  const { wal } = Wal.open(new NodeDisk(), dir, { cipher: aesGcmCipher(dataKey) }); // sealed as every manager's log is
  try {
    const conf = { voters: [nodeId], learners: [] };
    const { RaftIndex: index, RaftTerm: term } = p.header;
    wal.saveSnapshot({ meta: { index, term, conf }, data: p.snapshot }, true);
    wal.saveConfState(conf);
    wal.save({ term, vote: null, commit: index }, []);
  } finally {
    wal.close();
  }
  p.snapshot = new Uint8Array(0); // in the log now: the daemon need not hold a second copy for its lifetime
  saveRecord(dataDir, { ClusterID: p.header.ClusterID, RaftIndex: p.header.RaftIndex, Sha256: p.digest, File: p.file, At: now.toISOString(), Settled: false });
  return setAside;
}

/** Step 3, once this node leads its restored log. Returns the line for the daemon's log. */
export async function settleRestore(store: MemoryStore, dataDir: string, nodeId: string, advertised: string, p: PreparedRestore): Promise<string> {
  const h = p.header;
  const at = `raft index ${h.RaftIndex}, term ${h.RaftTerm}, taken on node ${h.NodeID} at ${h.CreatedAt}`;
  if (p.recorded === 'done') {
    return `--restore: this data dir was restored from ${p.file} already (${at}); starting normally: start without --restore from now on`;
  }
  const removed: string[] = [];
  const down: string[] = [];
  await store.update((tx) => {
    const cluster = currentCluster(store);
    if (!cluster) throw new ShoalError(`--restore: the restored state holds no cluster object`);
    for (const n of store.list('nodes')) {
      if (n.ID === nodeId) continue;
      if (n.Spec.Role === 'manager') {
        tx.delete('nodes', n.ID);
        removed.push(n.ID);
      } else if (n.Status.State !== 'down') {
        tx.update('nodes', { ...n, Status: { ...n.Status, State: 'down', Message: 'restored from a backup: not seen by this cluster yet' } });
        down.push(n.ID);
      }
    }
    if (!store.get('nodes', nodeId)) tx.create('nodes', leadingManagerNode(nodeId, describeHost([]), advertised));
    if (removed.length) {
      const kept = (cluster.RemovedNodes ?? []).filter((id) => !removed.includes(id));
      tx.update('clusters', { ...cluster, RemovedNodes: [...kept, ...removed].slice(-MAX_REMOVED_NODES) });
    }
  });
  const rec = loadRecord(dataDir);
  if (rec) saveRecord(dataDir, { ...rec, Settled: true });
  const counts = ['services', 'networks', 'secrets', 'configs', 'tasks'].map((t) => `${h.Objects[t] ?? 0} ${t}`).join(', ');
  return `--restore: cluster ${h.ClusterID} restored from ${p.file} (${at}): ${counts}; this node is its only manager; ` +
    `removed the backup's managers (${removed.join(', ') || 'none'}); ${down.length} worker(s) marked down until they reconnect. ` +
    `Join workers and managers with the cluster's join tokens; start without --restore and --force-new-cluster from now on`;
}

function loadRecord(dataDir: string): RestoreRecord | null {
  try {
    const r = JSON.parse(readFileSync(join(dataDir, RESTORE_RECORD_FILE), 'utf8')) as RestoreRecord;
    return r && typeof r.Sha256 === 'string' && typeof r.ClusterID === 'string' ? r : null;
  } catch {
    return null;
  }
}

function saveRecord(dataDir: string, r: RestoreRecord): void {
  const f = join(dataDir, RESTORE_RECORD_FILE);
  writeFileSync(`${f}.tmp`, `${JSON.stringify(r, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${f}.tmp`, f);
}
