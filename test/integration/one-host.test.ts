/**
 * The one-host cluster, driven through dist/shoal exactly as the README shows.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { alive, type Daemon, tempDaemon, waitFor } from '../harness/index.ts';

let d: Daemon & AsyncDisposable;

beforeAll(async () => {
  d = await tempDaemon();
  await d.start();
});
afterAll(async () => {
  await d?.[Symbol.asyncDispose]();
});

const pidsOf = (tasks: any[]) => tasks.map((t) => t.Status.ContainerStatus?.PID).filter((p): p is number => typeof p === 'number');

describe('one host: services through the CLI', () => {
  test('create → ls → ps → scale up → scale down → rm', async () => {
    const out = await d.ok('service', 'create', '--name', 'web', '--replicas', '3', '--', '/bin/sleep', '3600');
    expect(out).toContain('3/3');
    const ls = await d.ok('service', 'ls');
    expect(ls).toMatch(/web\s+replicated\s+3\/3/);
    const ps = await d.ok('service', 'ps', 'web');
    expect(ps.split('\n').filter((l) => /\bRunning\b/i.test(l))).toHaveLength(3);

    await d.ok('service', 'scale', 'web=5');
    expect(await d.running('web')).toHaveLength(5);

    const before = await d.running('web');
    await d.ok('service', 'scale', 'web=2');
    await waitFor('2 running tasks after scale down', async () => (await d.running('web')).length === 2);
    const gone = before.filter((t) => !t.Slot || t.Slot > 2);
    await waitFor('scaled-down processes to exit', () => pidsOf(gone).every((p) => !alive(p)));

    const json = JSON.parse(await d.ok('service', 'inspect', 'web', '--format', 'json'));
    const svc = Array.isArray(json) ? json[0] : json;
    expect(svc.Spec.Mode.Replicated.Replicas).toBe(2);

    const left = await d.running('web');
    await d.ok('service', 'rm', 'web');
    await waitFor('no task of a removed service', async () => (await d.tasks({ service: [svc.ID] })).length === 0);
    await waitFor('processes of a removed service to exit', () => pidsOf(left).every((p) => !alive(p)));
    expect((await d.cli('service', 'inspect', 'web')).code).not.toBe(0);
  });

  test('a process killed from outside is replaced', async () => {
    await d.ok('service', 'create', '--name', 'victim', '--replicas', '1', '--restart-delay', '100ms', '--', '/bin/sleep', '3600');
    const [t] = await d.running('victim');
    const pid = t.Status.ContainerStatus.PID as number;
    process.kill(pid, 'SIGKILL');
    const replacement = await waitFor('a replacement task running', async () => (await d.running('victim')).find((x) => x.ID !== t.ID));
    expect(replacement.Slot).toBe(t.Slot);
    const old = (await d.tasks({ service: ['victim'] })).find((x) => x.ID === t.ID);
    expect(old.Status.State).toBe('failed');
    await d.ok('service', 'rm', 'victim');
  });

  test('a program that exits at once under --restart-condition any is restarted with the delay', async () => {
    await d.ok('service', 'create', '--detach', '--name', 'flappy', '--restart-condition', 'any', '--restart-delay', '300ms', '--', '/bin/true');
    const tasks = await waitFor('4 attempts of the slot', async () => {
      const ts = await d.tasks({ service: ['flappy'] });
      return ts.length >= 4 ? ts : null;
    });
    const created = tasks.map((t) => Date.parse(t.CreatedAt)).sort((a, b) => a - b);
    for (let i = 1; i < created.length; i++) expect(created[i]! - created[i - 1]!).toBeGreaterThanOrEqual(290);
    await d.ok('service', 'rm', 'flappy');
  });

  test('--restart-condition none leaves a finished task complete', async () => {
    await d.ok('service', 'create', '--detach', '--name', 'once', '--restart-condition', 'none', '--', '/bin/sh', '-c', 'echo hello from once');
    const [t] = await waitFor('the task to complete', async () => {
      const ts = await d.tasks({ service: ['once'] });
      return ts.length === 1 && ts[0].Status.State === 'complete' ? ts : null;
    });
    expect(t.DesiredState).not.toBe('running');
    const logs = await d.ok('service', 'logs', 'once');
    expect(logs).toContain('hello from once');
    await d.ok('service', 'rm', 'once');
  });

  test('a failing program is failed with its exit code', async () => {
    await d.ok('service', 'create', '--detach', '--name', 'bad', '--restart-condition', 'none', '--', '/bin/sh', '-c', 'exit 3');
    const [t] = await waitFor('the task to fail', async () => {
      const ts = await d.tasks({ service: ['bad'] });
      return ts.length === 1 && ts[0].Status.State === 'failed' ? ts : null;
    });
    expect(t.Status.Err ?? t.Status.Message).toContain('3');
    await d.ok('service', 'rm', 'bad');
  });

  test('a task that cannot be placed stays pending and says why', async () => {
    const r = await d.cli('service', 'create', '--detach', '--name', 'nowhere', '--constraint', 'node.labels.zone==mars', '--', '/bin/sleep', '60');
    expect(r.code).toBe(0);
    const [t] = await waitFor('a pending task with an explanation', async () => {
      const ts = await d.tasks({ service: ['nowhere'] });
      return ts.length === 1 && ts[0].Status.State === 'pending' && (ts[0].Status.Err || ts[0].Status.Message).includes('constraint') ? ts : null;
    });
    expect(t.NodeID).toBeFalsy();
    expect(await d.ok('service', 'ps', 'nowhere')).toContain('constraint');
    const node = (await d.json<any[]>('/nodes'))[0];
    await d.ok('node', 'update', '--label-add', 'zone=mars', node.ID);
    await waitFor('the task to run once the node matches', async () => (await d.running('nowhere')).length === 1);
    await d.ok('service', 'rm', 'nowhere');
  });

  test('drain moves tasks off the node; on one host they wait pending until it is active again', async () => {
    await d.ok('service', 'create', '--name', 'drained', '--replicas', '2', '--', '/bin/sleep', '3600');
    const nodes = await d.json<any[]>('/nodes');
    expect(nodes).toHaveLength(1);
    const ls = await d.ok('node', 'ls');
    expect(ls).toContain(nodes[0].Description.Hostname);
    await d.ok('node', 'update', '--availability', 'drain', nodes[0].ID);
    await waitFor('two pending replacements', async () => {
      const ts = await d.tasks({ service: ['drained'], 'desired-state': ['running'] });
      return ts.length === 2 && ts.every((t) => t.Status.State === 'pending');
    });
    expect(await d.running('drained')).toHaveLength(0);
    await d.ok('node', 'update', '--availability', 'active', nodes[0].ID);
    await waitFor('2 running again', async () => (await d.running('drained')).length === 2);
    await d.ok('service', 'rm', 'drained');
  });

  test('a global service runs one task on the node', async () => {
    await d.ok('service', 'create', '--name', 'everywhere', '--mode', 'global', '--', '/bin/sleep', '3600');
    expect(await d.running('everywhere')).toHaveLength(1);
    await d.ok('service', 'rm', 'everywhere');
  });

  test('info, version, cluster inspect, node inspect', async () => {
    const info = await d.ok('info');
    expect(info.toLowerCase()).toContain('swarm');
    expect((await d.ok('version')).length).toBeGreaterThan(0);
    const cluster = JSON.parse(await d.ok('cluster', 'inspect', '--format', 'json'));
    expect(cluster.ID).toBeTruthy();
    const node = (await d.json<any[]>('/nodes'))[0];
    const inspected = JSON.parse(await d.ok('node', 'inspect', node.ID, '--format', 'json'));
    expect((Array.isArray(inspected) ? inspected[0] : inspected).ID).toBe(node.ID);
  });

  test('bad input gets a clear error, never a crash', async () => {
    const bad = await d.cli('service', 'create', '--replicas', 'many', '--', '/bin/true');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr + bad.stdout).toContain('--replicas');
    const r1 = await d.api('/services/create', { method: 'POST', body: '{"Name": "x", "TaskTemplate": ', headers: { 'content-type': 'application/json' } });
    expect(r1.status).toBe(400);
    const r2 = await d.api('/services/create', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ Name: 'typed', TaskTemplate: { Runtime: 'process', ProcessSpec: { Command: ['/bin/true'] }, RestartPolicy: { Delay: 'soon' } } }),
    });
    expect(r2.status).toBe(400);
    expect(await r2.text()).toContain('Delay');
    expect((await d.api('/services/doesnotexist')).status).toBe(404);
    await d.ok('service', 'create', '--detach', '--name', 'twice', '--', '/bin/sleep', '60');
    const clash = await d.cli('service', 'create', '--detach', '--name', 'twice', '--', '/bin/sleep', '60');
    expect(clash.code).not.toBe(0);
    expect(clash.stderr).toContain('twice');
    const svc = await d.json('/services/twice');
    const stale = await d.api(`/services/${svc.ID}/update?version=${svc.Version.Index - 1}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(svc.Spec),
    });
    expect(stale.status).toBe(409);
    const huge = await d.api('/services/create', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ Name: 'x'.repeat(20 * 1024 * 1024) }) });
    expect([400, 413]).toContain(huge.status);
    expect((await d.api('/_ping')).ok).toBe(true);
    await d.ok('service', 'rm', 'twice');
  });
});
