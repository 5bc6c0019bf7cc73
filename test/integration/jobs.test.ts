/**
 * Jobs and "why is my task pending", through the compiled dist/shoal: replicated jobs run
 * MaxConcurrent at a time to exactly TotalCompletions, failures are retried per the restart policy,
 * an update runs a job again, a global job runs once per node; `service ps` names what keeps a task
 * from being placed.
 */
import { expect, test } from 'bun:test';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, tempDaemon, waitFor } from '../harness/index.ts';

function scratch(): string & Disposable {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-jobs-'));
  return Object.assign(dir, { [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) }) as unknown as string & Disposable;
}

const completedOf = (ts: any[]) => ts.filter((t) => t.Status.State === 'complete');

test('a replicated job runs MaxConcurrent at a time and completes exactly TotalCompletions tasks', async () => {
  await using d = await tempDaemon();
  await d.start();
  using gate = scratch();
  const dir = String(gate);
  // Each task says it started, then waits for the gate: until it opens, what runs at once is visible.
  const script = `touch ${dir}/started.$SHOAL_TASK_ID; while [ ! -e ${dir}/go ]; do sleep 0.05; done`;
  await d.ok('service', 'create', '--detach', '--name', 'batch', '--mode', 'replicated-job', '--replicas', '5', '--max-concurrent', '2', '--', '/bin/sh', '-c', script);
  const started = () => readdirSync(dir).filter((f) => f.startsWith('started.')).length;
  await waitFor('2 tasks running and started', async () => (await d.running('batch')).length === 2 && started() === 2);
  expect(await d.tasks({ service: ['batch'] })).toHaveLength(2); // no third task while two run
  expect(started()).toBe(2);
  writeFileSync(join(dir, 'go'), '');

  const tasks = await waitFor('5 completed tasks', async () => {
    const ts = await d.tasks({ service: ['batch'] });
    return completedOf(ts).length === 5 ? ts : null;
  }, 30_000);
  expect(tasks).toHaveLength(5);
  expect(tasks.map((t) => t.Slot).sort()).toEqual([1, 2, 3, 4, 5]);
  for (const t of tasks) expect(t).toMatchObject({ DesiredState: 'complete', JobIteration: { Index: 0 } });
  expect(started()).toBe(5);

  const ps = await d.ok('service', 'ps', 'batch');
  expect(ps.match(/Complete\s+Complete /g)).toHaveLength(5);
  const ls = await d.ok('service', 'ls');
  expect(ls).toMatch(/batch\s+replicated job\s+0\/0 \(5\/5 completed\)/);
  const svc = await d.json('/services/batch');
  expect(svc.JobStatus.JobIteration).toEqual({ Index: 0 });
  expect(Number.isNaN(Date.parse(svc.JobStatus.LastExecution))).toBe(false);
});

test('failed job tasks are retried per the restart policy; an update runs the job again', async () => {
  await using d = await tempDaemon();
  await d.start();
  using runs = scratch();
  const dir = String(runs);
  // The first two runs fail (exit 1), every later one succeeds.
  const script = `n=$(ls ${dir} | wc -l); touch ${dir}/run.$SHOAL_TASK_ID; [ "$n" -ge 2 ]`;
  const out = await d.ok('service', 'create', '--name', 'flaky', '--mode', 'replicated-job', '--replicas', '3', '--max-concurrent', '1',
    '--restart-condition', 'on-failure', '--restart-delay', '0s', '--', '/bin/sh', '-c', script);
  expect(out).toContain('flaky: 3/3 complete'); // the CLI waited for the job to complete
  const tasks = await d.tasks({ service: ['flaky'] });
  expect(tasks).toHaveLength(5);
  const failed = tasks.filter((t) => t.Status.State === 'failed');
  expect(failed.map((t) => [t.Slot, t.RestartAttempts ?? 0]).sort()).toEqual([[1, 0], [1, 1]]);
  expect(completedOf(tasks).map((t) => [t.Slot, t.RestartAttempts ?? 0]).sort()).toEqual([[1, 2], [2, 0], [3, 0]]);
  expect(await d.ok('service', 'ps', 'flaky')).toMatch(/Shutdown\s+Failed /);

  // An update starts a new iteration: the job runs again, to its new TotalCompletions.
  const before = (await d.json('/services/flaky')).JobStatus.JobIteration.Index;
  const again = await d.ok('service', 'update', '--replicas', '2', 'flaky');
  expect(again).toContain('flaky: 2/2 complete');
  const after = (await d.json('/services/flaky')).JobStatus.JobIteration.Index;
  expect(after).toBeGreaterThan(before);
  const rerun = (await d.tasks({ service: ['flaky'] })).filter((t) => t.JobIteration?.Index === after);
  expect(rerun.map((t) => [t.Slot, t.Status.State]).sort()).toEqual([[1, 'complete'], [2, 'complete']]);
  expect(completedOf(await d.tasks({ service: ['flaky'] }))).toHaveLength(5); // the first run's are kept
});

test('a job whose restart policy gives up cannot complete: the CLI says so', async () => {
  await using d = await tempDaemon();
  await d.start();
  const r = await d.cli('service', 'create', '--name', 'doomed', '--mode', 'replicated-job', '--replicas', '2', '--max-concurrent', '1',
    '--restart-condition', 'on-failure', '--restart-delay', '0s', '--restart-max-attempts', '1', '--', '/bin/sh', '-c', 'exit 3');
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain('doomed cannot complete');
  expect(r.stderr).toContain('restart policy gave up');
  const tasks = await d.tasks({ service: ['doomed'] });
  expect(tasks.map((t) => [t.Slot, t.Status.State]).sort()).toEqual([[1, 'failed'], [1, 'failed']]); // slot 2 never started
});

test('a global job runs once on every node', async () => {
  await using cluster = Cluster.loopback();
  const { managers: [m1] } = await cluster.boot({ managers: 1, workers: 1, readyMs: 20_000 });
  const out = await m1.ok('service', 'create', '--name', 'everywhere', '--mode', 'global-job', '--', '/bin/sh', '-c', 'exit 0');
  expect(out).toContain('everywhere: 2/2 complete');
  const tasks = await m1.tasks({ service: ['everywhere'] });
  expect(tasks).toHaveLength(2);
  expect(completedOf(tasks)).toHaveLength(2);
  expect(new Set(tasks.map((t) => t.NodeID)).size).toBe(2);
  expect((await m1.ok('service', 'ps', 'everywhere')).match(/Complete\s+Complete /g)).toHaveLength(2);
  expect(await m1.ok('service', 'ls')).toMatch(/everywhere\s+global job\s+0\/0 \(2 completed\)/);
});

test('service ps says why a task is pending: a constraint no node satisfies, a drained node', async () => {
  await using d = await tempDaemon();
  await d.start();
  await d.ok('service', 'create', '--detach', '--name', 'nowhere', '--constraint', 'node.labels.zone==mars', '--', '/bin/sleep', '60');
  const why = 'no suitable node (constraint node.labels.zone==mars not satisfied on 1 node)';
  await waitFor('the pending reason', async () => (await d.tasks({ service: ['nowhere'] }))[0]?.Status.Err === why);
  expect(await d.ok('service', 'ps', 'nowhere')).toMatch(/nowhere\.1\s+Running\s+Pending .*no suitable node \(constraint node\.labels\.zone==mars not satisfied on 1 node\)\n/);

  const self = (await d.json<any>('/info')).Swarm.NodeID as string;
  await d.ok('node', 'update', '--availability', 'drain', self);
  await d.ok('service', 'create', '--detach', '--name', 'batch', '--mode', 'replicated-job', '--replicas', '2', '--', '/bin/sh', '-c', 'exit 0');
  await waitFor('the pending reason', async () => {
    const ts = await d.tasks({ service: ['batch'] });
    return ts.length === 2 && ts.every((t) => t.Status.Err === 'no suitable node (1 node drained)');
  });
  const ps = await d.ok('service', 'ps', 'batch');
  expect(ps.match(/Pending .*no suitable node \(1 node drained\)/g)).toHaveLength(2);
  // Active again: the job runs to completion.
  await d.ok('node', 'update', '--availability', 'active', self);
  await waitFor('2 completed', async () => completedOf(await d.tasks({ service: ['batch'] })).length === 2, 30_000);
});

test.skipIf(Bun.which('docker') === null)('the docker CLI lists a job, shows its completed tasks and runs it again with an update', async () => {
  await using d = await tempDaemon();
  await d.start();
  const docker = async (...args: string[]) => {
    const p = Bun.spawn(['docker', ...args], { stdout: 'pipe', stderr: 'pipe', env: { ...d.env, DOCKER_HOST: `unix://${d.socket}`, DOCKER_CLI_HINTS: 'false' } });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    if (code !== 0) throw new Error(`docker ${args.join(' ')} exited ${code}: ${err}${out}`);
    return out;
  };
  await d.ok('service', 'create', '--name', 'once', '--mode', 'replicated-job', '--replicas', '2', '--', '/bin/sh', '-c', 'exit 0');
  expect(await docker('service', 'ls')).toMatch(/once\s+replicated job\s+0\/0 \(2\/2 completed\)/);
  expect((await docker('service', 'ps', 'once')).match(/Complete\s+Complete /g)).toHaveLength(2);
  const before = (await d.json('/services/once')).JobStatus.JobIteration.Index;
  await docker('service', 'update', '--detach', '--force', 'once');
  const after = (await d.json('/services/once')).JobStatus.JobIteration.Index;
  expect(after).toBeGreaterThan(before);
  await waitFor('the second run to complete', async () => completedOf(await d.tasks({ service: ['once'] })).length === 4, 30_000);
});
