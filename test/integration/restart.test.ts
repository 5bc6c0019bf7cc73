/**
 * Durability across daemon restarts: kill -9 loses no acknowledged write and tasks are re-attached;
 * a clean stop leaves no task process behind.
 */
import { expect, test } from 'bun:test';
import { alive, tempDaemon, waitFor } from './harness.ts';

const pids = (ts: any[]) => ts.map((t) => t.Status.ContainerStatus?.PID as number).filter(Boolean).sort();

test('kill -9 of the daemon with services running; a restart finds them intact and re-attached', async () => {
  await using d = await tempDaemon();
  await d.start();
  await d.ok('service', 'create', '--name', 'durable', '--replicas', '3', '--', '/bin/sleep', '3600');
  await d.ok('service', 'create', '--detach', '--name', 'acked', '--replicas', '0', '--', '/bin/sleep', '1');
  const before = await d.running('durable');
  expect(before).toHaveLength(3);
  const node = (await d.json<any[]>('/nodes'))[0];

  await d.kill9();
  expect(pids(before).every(alive)).toBe(true); // the tasks outlive the daemon

  await d.start(false);
  expect((await d.json<any[]>('/nodes'))[0].ID).toBe(node.ID);
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
