/** runCli against createApp() on a unix socket: a fake orchestrator turns replicas into running tasks. */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testApi, type TestApi } from '../api/test-helper.ts';
import type { Service, Task } from '../types/index.ts';
import type { Io } from './command.ts';
import { runCli } from './index.ts';
import { canonical } from './progress.ts';

let api: TestApi;
let dir: string;
let server: ReturnType<typeof Bun.serve>;
let env: Record<string, string>;

/** Keeps `Replicas` tasks running per service (no scheduler: every task lands on the one node at once). */
function fakeOrchestrator(a: TestApi): void {
  const store = a.deps.store;
  let busy = false;
  const reconcile = async () => {
    if (busy) return;
    busy = true;
    try {
      for (const s of store.list('services')) {
        const want = s.Spec.Mode?.Replicated?.Replicas ?? 1;
        const active = store.by('tasks', 'service', s.ID).filter((t) => t.DesiredState === 'running');
        for (const t of active.filter((t) => canonical(t.Spec) !== canonical(s.Spec.TaskTemplate))) {
          await store.update((tx) => tx.update('tasks', { ...t, DesiredState: 'shutdown' } as Task));
        }
        const live = active.filter((t) => canonical(t.Spec) === canonical(s.Spec.TaskTemplate));
        if (s.Spec.TaskTemplate.MockSpec?.StartError) {
          if (store.by('tasks', 'service', s.ID).length < 5) await a.addTask({ ServiceID: s.ID, Slot: 1, Spec: s.Spec.TaskTemplate, DesiredState: 'shutdown', Status: { Timestamp: new Date().toISOString(), State: 'rejected', Message: 'start failed', Err: s.Spec.TaskTemplate.MockSpec.StartError } });
          continue;
        }
        if (s.Spec.TaskTemplate.Placement?.Constraints?.length) {
          if (!live.length) await a.addTask({ ServiceID: s.ID, Slot: 1, NodeID: '', Spec: s.Spec.TaskTemplate, Status: { Timestamp: new Date().toISOString(), State: 'pending', Message: 'no suitable node (constraint)', Err: 'no suitable node (constraint)' } });
          continue;
        }
        const taken = new Set(live.map((t) => t.Slot));
        for (let slot = 1; slot <= want; slot++) if (!taken.has(slot)) await a.addTask({ ServiceID: s.ID, Slot: slot, Spec: s.Spec.TaskTemplate });
        for (const t of live.filter((t) => t.Slot > want)) await store.update((tx) => tx.update('tasks', { ...t, DesiredState: 'shutdown' } as Task));
      }
    } finally {
      busy = false;
    }
  };
  setInterval(() => void reconcile(), 20).unref();
}

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (s) => void (out += s), err: (s) => void (err += s), tty: false, env };
  const code = await runCli(argv, io);
  return { code, out, err };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-cli-'));
  api = testApi();
  fakeOrchestrator(api);
  server = Bun.serve({ unix: join(dir, 'shoal.sock'), fetch: (r) => api.app.fetch(r) });
  env = { SHOAL_HOST: `unix://${join(dir, 'shoal.sock')}` };
});
afterAll(() => {
  server?.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

describe('the CLI against the API', () => {
  test('before init: a clear error naming "cluster init"; then init', async () => {
    const r = await cli('service', 'ls');
    expect(r.code).toBe(1);
    expect(r.err).toStartWith('Error: ');
    expect(r.err).toContain('shoal cluster init');
    const i = await cli('cluster', 'init');
    expect(i.code).toBe(0);
    expect(i.out).toContain('Cluster initialized');
    expect((await cli('cluster', 'init')).code).toBe(1);
  });

  test('create waits for convergence; ls, ps, inspect, scale, update, rm', async () => {
    const c = await cli('service', 'create', '--name', 'web', '--replicas', '3', '--', '/bin/sleep', '60');
    expect(c.code).toBe(0);
    expect(c.out).toContain('web: 3/3 running');
    expect((await cli('service', 'ls')).out).toMatch(/web\s+replicated\s+3\/3\s+process/);
    expect((await cli('service', 'ps', 'web')).out.split('\n').filter((l) => /Running\s+Running/.test(l))).toHaveLength(3);
    const inspected = JSON.parse((await cli('service', 'inspect', 'web', '--format', 'json')).out);
    expect(inspected[0].Spec.Name).toBe('web');
    const s = await cli('service', 'scale', 'web=5');
    expect(s.out).toContain('web: 5/5 running');
    expect(api.deps.store.by('tasks', 'service', inspected[0].ID).filter((t) => t.DesiredState === 'running')).toHaveLength(5);
    const u = await cli('service', 'update', '--replicas', '2', '--env-add', 'A=1', 'web');
    expect(u.code).toBe(0);
    const svc = api.deps.store.get('services', inspected[0].ID) as Service;
    expect(svc.Spec.TaskTemplate.ProcessSpec?.Env).toEqual(['A=1']);
    expect((await cli('service', 'rm', 'web')).code).toBe(0);
    const gone = await cli('service', 'inspect', 'web');
    expect(gone.code).toBe(1);
    expect(gone.err).toBe('Error: service web not found\n');
  });

  test('a pending task is explained; a rejected one makes create fail with the reason', async () => {
    const p = await cli('service', 'create', '--name', 'nowhere', '--wait-timeout', '300ms', '--constraint', 'node.labels.zone==mars', '/bin/true');
    expect(p.code).toBe(1);
    expect(p.out).toContain('pending: no suitable node (constraint)');
    expect(p.err).toContain('did not converge');
    expect((await cli('service', 'ps', 'nowhere')).out).toContain('no suitable node (constraint)');
    const r = await cli('service', 'create', '--name', 'broken', '--runtime', 'mock', '--mock-start-error', 'boom');
    expect(r.code).toBe(1);
    expect(r.err).toContain('boom');
  });

  test('mistakes: bad values, name clash, unknown command, unreachable daemon', async () => {
    const bad = await cli('service', 'create', '--replicas', 'many', '--', '/bin/true');
    expect(bad).toMatchObject({ code: 1, out: '' });
    expect(bad.err).toBe('Error: invalid value "many" for --replicas: expected a non-negative integer\n');
    await cli('service', 'create', '-d', '--name', 'twice', '/bin/true');
    const clash = await cli('service', 'create', '-d', '--name', 'twice', '/bin/true');
    expect(clash.err).toContain('"twice" is already in use');
    expect((await cli('service', 'frobnicate')).err).toContain('unknown command');
    expect((await cli('nope')).code).toBe(1);
    expect((await cli('service', 'ls', '--format', 'yaml')).err).toBe('Error: invalid value "yaml" for --format: expected json or table\n');
    expect((await cli('service', 'inspect')).err).toContain('requires at least 1 argument');
    expect((await cli('info', 'extra')).err).toContain('accepts no arguments');
    const down = await cli('-H', `unix://${dir}/nothing.sock`, 'service', 'ls');
    expect(down.code).toBe(1);
    expect(down.err).toContain(`unix://${dir}/nothing.sock`);
    expect(down.err).toContain('shoal daemon');
  });

  test('node ls/inspect/update; info; version; logs', async () => {
    const nodes = api.deps.store.list('nodes');
    expect((await cli('node', 'ls')).out).toContain(`${nodes[0]!.ID} *`);
    expect(JSON.parse((await cli('node', 'inspect', 'self')).out)[0].ID).toBe(nodes[0]!.ID);
    expect((await cli('node', 'update', '--availability', 'drain', '--label-add', 'zone=mars', nodes[0]!.ID)).code).toBe(0);
    expect(api.deps.store.get('nodes', nodes[0]!.ID)!.Spec).toMatchObject({ Availability: 'drain', Labels: { zone: 'mars' } });
    expect((await cli('info')).out).toContain('Swarm: active');
    expect(JSON.parse((await cli('cluster', 'inspect')).out).ID).toBeTruthy();
    // cluster update: only the options given change; the daemon names a bad field.
    expect((await cli('cluster', 'update', '--managers', '-1', '--manager-lost-grace', '2s')).out).toContain('Cluster updated');
    expect((await cli('cluster', 'update', '--managers', '0', '--cert-expiry', '2h', '--task-history-limit', '3')).code).toBe(0);
    const spec = api.deps.store.list('clusters')[0]!.Spec;
    expect(spec.Managers).toEqual({ Desired: 0, LostGracePeriod: 2e9 });
    expect(spec.CAConfig.NodeCertExpiry).toBe(2 * 3600e9);
    expect(spec.Orchestration.TaskHistoryRetentionLimit).toBe(3);
    const even = await cli('cluster', 'update', '--managers', '4');
    expect(even.code).toBe(1);
    expect(even.err).toContain('Spec.Managers.Desired: 4 managers: must be odd');
    expect((await cli('cluster', 'update', '--cert-expiry', '10m')).err).toContain('Spec.CAConfig.NodeCertExpiry: 10m is too short');
    expect((await cli('cluster', 'update', '--election-tick', '40', '--heartbeat-tick', '4')).code).toBe(0);
    expect(api.deps.store.list('clusters')[0]!.Spec.Raft).toMatchObject({ ElectionTick: 40, HeartbeatTick: 4 });
    expect((await cli('cluster', 'update', '--election-tick', '8')).err).toContain('Spec.Raft.ElectionTick: must be more than twice');
    expect((await cli('cluster', 'update')).err).toContain('nothing to update');
    const v = await cli('version');
    expect(v.out).toContain('Server:');
    await cli('service', 'create', '-d', '--name', 'talker', '/bin/true');
    await Bun.sleep(100);
    const t = api.deps.store.by('tasks', 'service', api.deps.store.by('services', 'name', 'talker')[0]!.ID)[0]!;
    api.logs.set(t.ID, [{ stream: 'stdout', time: 1, line: 'hello' }, { stream: 'stderr', time: 2, line: 'world' }]);
    const l = await cli('service', 'logs', 'talker');
    expect(l.out).toBe(`talker.1.${t.ID.slice(0, 12)} | hello\ntalker.1.${t.ID.slice(0, 12)} | world\n`);
    expect((await cli('service', 'logs', '--tail', '1', t.ID)).out).toBe(`talker.1.${t.ID.slice(0, 12)} | world\n`);
    expect((await cli('service', 'logs', 'nothing')).err).toBe('Error: service nothing not found\n');
  });

  test('help', async () => {
    expect((await cli('--help')).out).toContain('Usage: shoal');
    expect((await cli('service', 'create', '--help')).out).toContain('--restart-delay DURATION');
    expect((await cli('service')).out).toContain('scale');
  });
});
