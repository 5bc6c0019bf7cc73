import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_ELECTION_TICKS } from '../raft-host/host.ts';
import type { ClusterSpec, Service } from '../types/index.ts';
import { initCluster } from './cluster.ts';
import { type ClusterState, openClusterState } from './state.ts';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'shoal-state-'));
  cleanup.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function open(dataDir: string, snapshotInterval?: number): Promise<ClusterState> {
  const s = await openClusterState({ dataDir, nodeId: 'node-1', snapshotInterval });
  cleanup.push(() => s.close());
  return s;
}

function service(i: number): Service {
  return { ID: `s${i}`, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: { Name: `n${i}`, TaskTemplate: { Runtime: 'mock' } } };
}

const snapshots = (dataDir: string) => readdirSync(join(dataDir, 'raft')).filter((f) => f.endsWith('.snap'));

describe('cluster state on a one-voter raft log', () => {
  test('a fresh data dir leads at once and takes writes; a reopen resumes the same state', async () => {
    const dir = tempDir();
    const first = await open(dir);
    expect(first.raft.status.role).toBe('leader');
    expect(first.raft.status.conf.voters).toEqual(['node-1']);
    await first.store.update((tx) => tx.create('services', service(1)));
    const index = first.store.index;
    first.close();
    const again = await open(dir);
    expect(again.raft.status.role).toBe('leader');
    expect(again.store.get('services', 's1')!.Spec.Name).toBe('n1');
    expect(again.store.index).toBeGreaterThanOrEqual(index); // plus the new term's empty entry
  });

  test('a restart after a snapshot and a tail of entries recovers all of it', async () => {
    const dir = tempDir();
    const first = await open(dir, 10);
    for (let i = 0; i < 25; i++) await first.store.update((tx) => tx.create('services', service(i)));
    expect(first.raft.status.snapshotIndex).toBeGreaterThan(0);
    // The snapshot's file is written and synced off the event loop (raft-host/wal.ts).
    for (const deadline = Date.now() + 10_000; snapshots(dir).length === 0 && Date.now() < deadline; ) await Bun.sleep(5);
    expect(snapshots(dir).length).toBeGreaterThan(0);
    const before = first.store.list('services');
    first.close();
    const again = await open(dir, 10);
    expect(again.store.list('services')).toEqual(before);
    expect(again.store.by('services', 'name', 'n24')[0]!.ID).toBe('s24');
    await again.store.update((tx) => tx.create('services', service(99)));
    expect(again.store.size('services')).toBe(26);
  });

  test("the snapshot interval is the cluster's Spec.Raft.SnapshotInterval", async () => {
    const dir = tempDir();
    const s = await open(dir);
    const description = { Hostname: 'h', Platform: { OS: 'linux', Architecture: 'amd64' }, Resources: { NanoCPUs: 1e9, MemoryBytes: 2 ** 30 }, Engine: { EngineVersion: 'test', Plugins: [] } };
    // As POST /swarm/init passes a user's partial spec.
    await initCluster(s.store, 'node-1', description, { Raft: { SnapshotInterval: 5 } as ClusterSpec['Raft'] });
    expect(s.store.list('clusters')[0]!.Spec.Raft.ElectionTick).toBe(DEFAULT_ELECTION_TICKS); // the other Raft settings keep their defaults
    for (let i = 0; i < 6; i++) await s.store.update((tx) => tx.create('services', service(i)));
    expect(s.raft.status.snapshotIndex).toBeGreaterThan(0);
  });

  test("the cluster's Spec.Raft ticks reach the raft host, at start and when they change", async () => {
    const dir = tempDir();
    const s = await open(dir);
    const description = { Hostname: 'h', Platform: { OS: 'linux', Architecture: 'amd64' }, Resources: { NanoCPUs: 1e9, MemoryBytes: 2 ** 30 }, Engine: { EngineVersion: 'test', Plugins: [] } };
    await initCluster(s.store, 'node-1', description, { Raft: { ElectionTick: 30, HeartbeatTick: 3 } as ClusterSpec['Raft'] });
    expect(s.raft.timeouts).toEqual({ electionTicks: 30, heartbeatTicks: 3 });
    await s.store.update((tx) => {
      const c = tx.get('clusters', s.store.list('clusters')[0]!.ID)!;
      tx.update('clusters', { ...c, Spec: { ...c.Spec, Raft: { ...c.Spec.Raft, ElectionTick: 80 } } });
    });
    expect(s.raft.timeouts).toEqual({ electionTicks: 80, heartbeatTicks: 3 });
    // and the running core, not only the host's record of them
    expect((s.raft as unknown as { node: { timeouts: unknown } }).node.timeouts).toEqual({ electionTicks: 80, heartbeatTicks: 3 });
    s.close();
    // A restart reads them back from the log before the host campaigns again.
    const again = await open(dir);
    expect(again.raft.timeouts).toEqual({ electionTicks: 80, heartbeatTicks: 3 });
    again.close();
  });

  test('a data dir with the old SQLite state and no raft log refuses to start, saying what to do', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'state.db'), '');
    await expect(open(dir)).rejects.toThrow(/state\.db .*earlier pre-release.*remove it/);
  });
});
