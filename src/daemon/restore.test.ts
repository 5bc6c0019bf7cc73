import { afterEach, describe, expect, test } from 'bun:test';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeBackup } from '../backup/format.ts';
import { memoryStore, type MemoryStore, TABLES } from '../store/index.ts';
import type { Node, Secret, Service } from '../types/index.ts';
import { currentCluster, initCluster } from './cluster.ts';
import { describeHost } from './describe.ts';
import { prepareRestore, RESTORE_RECORD_FILE, seedRestoredLog, settleRestore } from './restore.ts';
import { openClusterState } from './state.ts';

const KEY = 'SWMKEY-1-0123456789abcdef0123456789abcdef';
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'shoal-restore-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const meta = { Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '' };
const node = (id: string, role: 'manager' | 'worker'): Node => ({
  ...meta, ID: id, Spec: { Role: role, Availability: 'active', Labels: {} }, Description: describeHost([]), Status: { State: 'ready', Addr: '10.0.0.9' },
  ...(role === 'manager' ? { ManagerStatus: { Reachability: 'reachable' as const, Addr: '10.0.0.9:4242' } } : {}),
});

/** An old cluster: m-old (its first manager), m-two, worker w-one, a service and a secret; autolock on when `key`. */
async function oldCluster(key?: string): Promise<MemoryStore> {
  const store = memoryStore();
  await initCluster(store, 'm-old', describeHost([]), {}, '10.0.0.1:4242');
  const svc: Service = { ...meta, ID: 'svc1', Spec: { Name: 'web', TaskTemplate: { Runtime: 'mock', MockSpec: {} }, Mode: { Replicated: { Replicas: 2 } } } };
  const secret: Secret = { ...meta, ID: 'sec1', Spec: { Name: 'pw', Data: Buffer.from('hush').toString('base64') } };
  await store.update((tx) => {
    tx.create('nodes', node('m-two', 'manager'));
    tx.create('nodes', node('w-one', 'worker'));
    tx.create('services', svc);
    tx.create('secrets', secret);
    if (key) tx.update('clusters', { ...currentCluster(store)!, UnlockKey: key });
  });
  return store;
}

function backupFile(store: MemoryStore, dir: string, key?: string): string {
  const { bytes } = encodeBackup({
    header: {
      ClusterID: currentCluster(store)!.ID, RaftIndex: store.index, RaftTerm: 4, NodeID: 'm-two', ShoalVersion: 'test',
      CreatedAt: new Date().toISOString(), Objects: Object.fromEntries(TABLES.map((t) => [t, store.size(t)])),
    },
    snapshot: store.snapshot(),
    unlockKey: key,
  });
  const f = join(dir, 'cluster.backup');
  writeFileSync(f, bytes, { mode: 0o600 });
  return f;
}

/** The restored log is sealed as every manager's (encryption at rest): this test's data key. */
const DATA_KEY = new Uint8Array(32).fill(7);

describe('restore: checks before anything is written', () => {
  test('a fresh data dir: refused without --force-new-cluster, and not even created', async () => {
    const store = await oldCluster();
    const file = backupFile(store, tmp());
    const dataDir = join(tmp(), 'new');
    expect(() => prepareRestore(dataDir, { file }, false)).toThrow(`--restore ${file} needs --force-new-cluster: restoring makes this host the only manager of cluster ${currentCluster(store)!.ID}`);
    expect(existsSync(dataDir)).toBe(false);
    expect(prepareRestore(dataDir, { file }, true)).toMatchObject({ replaces: false, recorded: 'no' });
    expect(existsSync(dataDir)).toBe(false);
  });

  test("another cluster's data dir is refused naming both clusters, with or without --force-new-cluster", async () => {
    const store = await oldCluster();
    const file = backupFile(store, tmp());
    const dataDir = tmp();
    writeFileSync(join(dataDir, 'cluster.json'), JSON.stringify({ ClusterID: 'other-cluster', Role: 'manager', RootCA: 'x', Cert: 'y', Joined: false, Managers: [] }));
    mkdirSync(join(dataDir, 'raft'));
    const before = readdirSync(dataDir).sort();
    for (const force of [false, true]) {
      expect(() => prepareRestore(dataDir, { file }, force)).toThrow(`belongs to cluster other-cluster (this host is a manager of it), the backup is of cluster ${currentCluster(store)!.ID}`);
    }
    expect(readdirSync(dataDir).sort()).toEqual(before);
  });

  test('a raft log of no known cluster is refused; a missing file is named', async () => {
    const store = await oldCluster();
    const file = backupFile(store, tmp());
    const dataDir = tmp();
    mkdirSync(join(dataDir, 'raft'));
    expect(() => prepareRestore(dataDir, { file }, true)).toThrow(`already holds cluster state (${join(dataDir, 'raft')})`);
    expect(() => prepareRestore(dataDir, { file: join(dataDir, 'nope') }, true)).toThrow(`--restore ${join(dataDir, 'nope')}: cannot read it`);
  });

  test('an encrypted backup: refused without the key and with a wrong one, the data dir untouched', async () => {
    const store = await oldCluster(KEY);
    const file = backupFile(store, tmp(), KEY);
    const dataDir = join(tmp(), 'new');
    expect(() => prepareRestore(dataDir, { file }, true)).toThrow('is encrypted: its cluster');
    expect(() => prepareRestore(dataDir, { file, unlockKey: 'SWMKEY-1-nottheone' }, true)).toThrow(`--unlock-key does not open --restore ${file}`);
    expect(existsSync(dataDir)).toBe(false);
    expect(prepareRestore(dataDir, { file, unlockKey: KEY }, true).header.Encryption).toBeDefined();
  });
});

describe('restore: the new cluster', () => {
  test('every object with its version; old managers removed, workers down, this node the only manager; versions only grow', async () => {
    const store = await oldCluster(KEY);
    const file = backupFile(store, tmp(), KEY);
    const dataDir = tmp();
    const plan = prepareRestore(dataDir, { file, unlockKey: KEY }, true);
    expect(seedRestoredLog(dataDir, 'm-new', plan, DATA_KEY)).toBeNull();
    const state = await openClusterState({ dataDir, nodeId: 'm-new', dataKey: DATA_KEY });
    try {
      expect(state.raft.status.role).toBe('leader');
      expect(state.raft.status.term).toBeGreaterThan(4);
      expect(state.raft.status.conf.voters).toEqual(['m-new']);
      for (const t of TABLES) expect(state.store.list(t)).toEqual(store.list(t));
      expect(currentCluster(state.store)!.UnlockKey).toBe(KEY);

      const line = await settleRestore(state.store, dataDir, 'm-new', '10.0.0.7:4242', plan);
      expect(line).toContain(`cluster ${currentCluster(store)!.ID} restored from ${file}`);
      expect(line).toContain('removed the backup\'s managers (m-old, m-two); 1 worker(s) marked down');
      const s = state.store;
      expect(s.get('nodes', 'm-old')).toBeUndefined();
      expect(s.get('nodes', 'm-two')).toBeUndefined();
      expect(currentCluster(s)!.RemovedNodes).toEqual(['m-old', 'm-two']);
      expect(s.get('nodes', 'w-one')!.Status.State).toBe('down');
      expect(s.get('nodes', 'm-new')).toMatchObject({ Spec: { Role: 'manager' }, ManagerStatus: { Leader: true, Addr: '10.0.0.7:4242' } });
      expect(s.get('services', 'svc1')).toEqual(store.get('services', 'svc1')!);
      expect(s.get('nodes', 'm-new')!.Version.Index).toBeGreaterThan(store.index);
      expect(JSON.parse(readFileSync(join(dataDir, RESTORE_RECORD_FILE), 'utf8'))).toMatchObject({ Settled: true, RaftIndex: store.index });
    } finally {
      state.close();
    }
    // The same flags again (a unit file): recognised, nothing restored twice.
    const again = prepareRestore(dataDir, { file, unlockKey: KEY }, true);
    expect(again.recorded).toBe('done');
    expect(seedRestoredLog(dataDir, 'm-new', again, DATA_KEY)).toBeNull();
  });

  test("a manager of the backup's own cluster: its raft log is set aside, kept", async () => {
    const store = await oldCluster();
    const file = backupFile(store, tmp());
    const dataDir = tmp();
    writeFileSync(join(dataDir, 'cluster.json'), JSON.stringify({ ClusterID: currentCluster(store)!.ID, Role: 'manager', RootCA: 'x', Cert: 'y', Joined: true, Managers: [] }));
    mkdirSync(join(dataDir, 'raft'));
    writeFileSync(join(dataDir, 'raft', 'marker'), 'old log');
    expect(() => prepareRestore(dataDir, { file }, false)).toThrow('needs --force-new-cluster: restoring replaces the state of this manager');
    const plan = prepareRestore(dataDir, { file }, true);
    expect(plan.replaces).toBe(true);
    const aside = seedRestoredLog(dataDir, 'm-two', plan, DATA_KEY)!;
    expect(readFileSync(join(aside, 'marker'), 'utf8')).toBe('old log');
    const state = await openClusterState({ dataDir, nodeId: 'm-two', dataKey: DATA_KEY });
    try {
      await settleRestore(state.store, dataDir, 'm-two', '10.0.0.9:4242', plan);
      expect(state.store.get('nodes', 'm-two')!.Spec.Role).toBe('manager');
      expect(state.store.get('nodes', 'm-old')).toBeUndefined();
    } finally {
      state.close();
    }
  });
});
