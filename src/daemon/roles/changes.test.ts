import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConflictError } from '../../lib/errors.ts';
import { memoryStore } from '../../store/index.ts';
import { addrsOf } from '../addrs.ts';
import { currentCluster } from '../cluster.ts';
import type { ClusterNet } from '../cluster-net.ts';
import { DaemonContext } from '../context.ts';
import type { Membership } from '../membership.ts';
import type { DaemonOptions } from '../options.ts';
import { RoleChanges } from './changes.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function setup(membership: Membership | null) {
  const dataDir = mkdtempSync(join(tmpdir(), 'shoal-roles-'));
  dirs.push(dataDir);
  const opts: DaemonOptions = { dataDir, init: false, keepTasks: false };
  const state = { store: memoryStore(), raft: null as never, transport: null as never, close: () => {} };
  const ctx = new DaemonContext(opts, () => {}, 'node-1', state, membership, addrsOf({ listenAddr: '127.0.0.1:4242' }));
  const calls: string[] = [];
  let restartedWith: DaemonOptions | null = null;
  let stopped!: () => void;
  const stop = new Promise<void>((r) => (stopped = r));
  const changes = new RoleChanges(ctx, {
    startRoles: async () => void calls.push('roles'),
    startNet: async () => void calls.push('net'),
    restartAs: async (next) => void (restartedWith = next),
    stop: async () => stopped(),
  });
  return { ctx, changes, calls, stop, restarted: () => restartedWith, dataDir };
}

const worker = (): Membership => ({ ClusterID: 'c1', Role: 'worker', RootCA: 'ca', Cert: 'cert', Joined: true, Managers: [{ NodeID: 'm1', Addr: '10.0.0.1:4242' }] });

/** A bounded wait for a condition the code under test reaches asynchronously. */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(cond()).toBe(true);
}

describe('RoleChanges', () => {
  test('init makes the cluster, then starts the roles and the network', async () => {
    const { ctx, changes, calls } = setup(null);
    expect(await changes.init({})).toBe('node-1');
    expect(currentCluster(ctx.store)).toBeDefined();
    expect(ctx.roles.state).toBe('manager');
    expect(calls).toEqual(['roles', 'net']);
  });

  test('init while a join is under way is refused and makes nothing', async () => {
    const { ctx, changes, calls } = setup(null);
    ctx.roles.go('joining');
    await expect(changes.init({})).rejects.toThrow(ConflictError);
    expect(currentCluster(ctx.store)).toBeUndefined();
    expect(calls).toEqual([]);
  });

  test('a manager leaves only with force', async () => {
    const { ctx, changes } = setup({ ...worker(), Role: 'manager' });
    await expect(changes.leave(false)).rejects.toThrow('this node is a manager');
    expect(ctx.roles.state).toBe('manager');
  });

  test('a worker leaves: the machine says leaving and the daemon stops', async () => {
    const { ctx, changes, stop } = setup(worker());
    await changes.leave(false);
    expect(ctx.roles.state).toBe('leaving');
    await stop;
  });

  test('a promotion no manager confirms goes back to worker', async () => {
    const { ctx, changes, restarted } = setup(worker());
    ctx.net = { renewFrom: async () => { throw new Error('refused'); } } as unknown as ClusterNet;
    changes.promote();
    expect(ctx.roles.state).toBe('promoting');
    changes.promote(); // a second heartbeat ack while promoting: ignored
    await until(() => ctx.roles.state === 'worker');
    expect(restarted()).toBeNull();
  });

  test('a confirmed promotion saves the manager role and restarts as a manager', async () => {
    const { ctx, changes, restarted, dataDir } = setup(worker());
    ctx.net = { renewFrom: async () => 'manager' } as unknown as ClusterNet;
    changes.promote();
    await until(() => restarted() !== null);
    expect(ctx.roles.state).toBe('restarting');
    expect(restarted()).toMatchObject({ init: false, join: undefined, token: undefined });
    expect(JSON.parse(readFileSync(join(dataDir, 'cluster.json'), 'utf8')).Role).toBe('manager');
  });
});
