/**
 * The CLI's streaming paths and the docker CLI against dist/shoal: one model serves both.
 * The docker part is skipped where no docker CLI is installed (it needs no docker daemon).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type Daemon, runDocker, SHOAL, tempDaemon, waitFor } from '../harness/index.ts';

const hasDocker = Bun.which('docker') !== null;
let d: Daemon & AsyncDisposable;

beforeAll(async () => {
  d = await tempDaemon();
  await d.start();
});
afterAll(async () => {
  await d?.[Symbol.asyncDispose]();
});

async function docker(...args: string[]): Promise<{ code: number; out: string }> {
  const r = await runDocker(d, args, { timeoutMs: 120_000 });
  return { code: r.code, out: r.out + r.err };
}

describe('shoal CLI streams', () => {
  test('service logs --follow prints new lines as they come, named by task', async () => {
    await d.ok('service', 'create', '--name', 'ticker', '--', '/bin/sh', '-c', 'i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done');
    const p = Bun.spawn([SHOAL, 'service', 'logs', '--follow', 'ticker'], { stdout: 'pipe', stderr: 'pipe', env: d.env });
    const reader = (p.stdout as ReadableStream<Uint8Array>).getReader();
    let got = '';
    await waitFor('5 ticks through a follow', async () => {
      const { value, done } = await reader.read();
      if (done) throw new Error(`logs ended: ${got}`);
      got += new TextDecoder().decode(value);
      return /ticker\.1\.\w+ \| tick 5\n/.test(got);
    });
    p.kill();
    await p.exited;
    await d.ok('service', 'rm', 'ticker');
  }, 15_000);
});

describe.skipIf(!hasDocker)('the docker CLI', () => {
  test('info, service ls/ps/inspect/scale/update/logs/rm, node update on a process service', async () => {
    expect((await docker('info')).out).toContain('Swarm: active');
    await d.ok('service', 'create', '--name', 'dk', '--replicas', '2', '--', '/bin/sh', '-c', 'while true; do echo tick; sleep 0.2; done');
    const ls = await docker('service', 'ls');
    expect(ls.out).toMatch(/dk\s+replicated\s+2\/2\s+process: \/bin\/sh/);
    expect((await docker('service', 'ps', 'dk')).code).toBe(0);
    expect((await docker('service', 'inspect', '--pretty', 'dk')).out).toContain('process: /bin/sh');

    const before = (await d.running('dk')).map((t) => t.ID);
    expect((await docker('service', 'scale', '--detach', 'dk=3')).code).toBe(0);
    const after = await waitFor('3 running', async () => {
      const r = await d.running('dk');
      return r.length === 3 ? r : null;
    });
    expect(before.every((id) => after.some((t) => t.ID === id))).toBe(true); // a scale replaces nothing

    const logs = await docker('service', 'logs', '--tail', '1', 'dk');
    expect(logs.code).toBe(0);
    expect(logs.out).toMatch(/dk\.\d\.\w+@\S+\s+\| tick/);

    expect((await docker('service', 'update', '--detach', '--env-add', 'X=1', 'dk')).code).toBe(0);
    const svc = await d.json('/services/dk');
    expect(svc.Spec.TaskTemplate.ProcessSpec.Env).toEqual(['X=1']);
    expect(svc.Spec.TaskTemplate.ContainerSpec).toBeUndefined();
    // `docker service rollback`: the server-side rollback brings the env back.
    const back = await docker('service', 'rollback', '--detach', 'dk');
    expect(back.code).toBe(0);
    const rolled = await d.json('/services/dk');
    expect(rolled.Spec.TaskTemplate.ProcessSpec.Env).toBeUndefined();
    expect(rolled.PreviousSpec.TaskTemplate.ProcessSpec.Env).toEqual(['X=1']);
    expect(rolled.UpdateStatus.State).toMatch(/^rollback_/);

    expect((await docker('node', 'update', '--label-add', 'zone=x', 'self')).code).toBe(0);
    expect((await d.json<any[]>('/nodes'))[0].Spec.Labels).toMatchObject({ zone: 'x' });

    expect((await docker('service', 'rm', 'dk')).code).toBe(0);
    await waitFor('dk gone', async () => (await d.api('/services/dk')).status === 404);

    // docker swarm update sends the whole spec back: what it changes applies, our Spec.Managers stays.
    await d.ok('cluster', 'update', '--managers', '-1');
    const up = await docker('swarm', 'update', '--cert-expiry', '2h', '--task-history-limit', '3');
    expect(up.code).toBe(0);
    const spec = (await d.json('/swarm')).Spec;
    expect(spec.CAConfig.NodeCertExpiry).toBe(2 * 3600e9);
    expect(spec.Orchestration.TaskHistoryRetentionLimit).toBe(3);
    expect(spec.Managers.Desired).toBe(-1);
    const short = await docker('swarm', 'update', '--cert-expiry', '10m');
    expect(short.code).not.toBe(0);
    expect(short.out).toContain('Spec.CAConfig.NodeCertExpiry: 10m is too short');
  }, 30_000);
});
