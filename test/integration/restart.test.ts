/**
 * Durability across daemon restarts: kill -9 loses no acknowledged write and tasks are re-attached;
 * a clean stop leaves no task process behind.
 */
import { expect, test } from 'bun:test';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { alive, SHOAL, tempDaemon, waitFor } from '../harness/index.ts';

const pids = (ts: any[]) => ts.map((t) => t.Status.ContainerStatus?.PID as number).filter(Boolean).sort();

test('kill -9 of the daemon with services running; a restart finds them intact and re-attached', async () => {
  await using d = await tempDaemon();
  await d.start();
  await d.ok('service', 'create', '--name', 'durable', '--replicas', '3', '--', '/bin/sleep', '3600');
  await d.ok('service', 'create', '--detach', '--name', 'acked', '--replicas', '0', '--', '/bin/sleep', '1');
  const before = await d.running('durable');
  expect(before).toHaveLength(3);
  const node = (await d.json<any[]>('/nodes'))[0];
  const cluster = await d.json('/swarm');

  await d.kill9();
  expect(pids(before).every(alive)).toBe(true); // the tasks outlive the daemon

  await d.start(false);
  expect((await d.json<any[]>('/nodes'))[0].ID).toBe(node.ID);
  expect((await d.json('/swarm')).ID).toBe(cluster.ID);
  expect((await d.json('/services/acked')).Spec.Name).toBe('acked');
  const after = await waitFor('3 running tasks after the restart', async () => {
    const r = await d.running('durable');
    return r.length === 3 ? r : null;
  });
  expect(after.map((t) => t.ID).sort()).toEqual(before.map((t) => t.ID).sort());
  expect(pids(after)).toEqual(pids(before));
});

test('stopping the daemon stops its tasks, and a restart runs them again', async () => {
  await using d = await tempDaemon();
  await d.start();
  await d.ok('service', 'create', '--name', 'tidy', '--replicas', '2', '--', '/bin/sh', '-c', 'sleep 3607 & sleep 3607');
  const before = await d.running('tidy');
  expect(await d.stop()).toBe(0);
  await waitFor('every task process to exit', () => pids(before).every((p) => !alive(p)));
  // 3607: a duration no other test uses, so any survivor is ours.
  const survivors = Bun.spawnSync(['pgrep', '-f', 'sleep 3607']).stdout.toString().split('\n').filter(Boolean);
  expect(survivors).toEqual([]);
  await d.start(false);
  await waitFor('2 running after restart', async () => (await d.running('tidy')).length === 2);
});

test('a daemon started without --init makes its cluster through the API', async () => {
  await using d = await tempDaemon();
  await d.start(false);
  const before = await d.cli('service', 'ls');
  expect(before.code).not.toBe(0);
  expect(before.stderr).toContain('cluster init');
  await d.ok('cluster', 'init');
  await d.ok('service', 'create', '--name', 'late', '--', '/bin/sleep', '60');
  expect(await d.running('late')).toHaveLength(1);
});

test('a restart after a raft snapshot and a tail of entries recovers both', async () => {
  await using d = await tempDaemon();
  await d.start(false);
  // A small snapshot interval, set as a user would (docker swarm init --snapshot-interval).
  const init = await d.api('/swarm/init', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ Spec: { Raft: { SnapshotInterval: 5 } } }) });
  expect(init.status).toBe(200);
  await d.ok('service', 'create', '--name', 'before-snap', '--replicas', '4', '--', '/bin/sleep', '3600');
  const snaps = () => readdirSync(join(d.dataDir, 'raft')).filter((f) => f.endsWith('.snap'));
  await waitFor('a raft snapshot', () => snaps().length > 0);
  await d.ok('service', 'create', '--detach', '--name', 'after-snap', '--replicas', '0', '--', '/bin/sleep', '1');
  const before = await d.running('before-snap');
  const cluster = await d.json('/swarm');

  await d.kill9();
  await d.start(false);
  expect((await d.json('/swarm')).ID).toBe(cluster.ID);
  expect((await d.json('/swarm')).Spec.Raft.SnapshotInterval).toBe(5);
  expect((await d.json('/services/after-snap')).Spec.Name).toBe('after-snap');
  const after = await waitFor('4 running tasks after the restart', async () => {
    const r = await d.running('before-snap');
    return r.length === 4 ? r : null;
  });
  expect(after.map((t) => t.ID).sort()).toEqual(before.map((t) => t.ID).sort());
});

test('a data dir of an earlier pre-release (state.db, no raft log) refuses to start, saying why', async () => {
  await using d = await tempDaemon();
  await Bun.write(join(d.dataDir, 'state.db'), '');
  const r = Bun.spawnSync([SHOAL, 'daemon', '--data-dir', d.dataDir], { stderr: 'pipe' });
  expect(r.exitCode).not.toBe(0);
  expect(r.stderr.toString()).toContain('state.db');
});
