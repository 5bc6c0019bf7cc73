/**
 * Stacks on dist/shoal: `shoal stack deploy` of a 5-service compose file (an overlay network, a
 * secret, a published port), a redeploy with one change, `stack ls|services|ps|rm`; then the real
 * docker CLI's `docker stack deploy|ls|services|ps|rm` against the same daemon.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engineForTests } from '../fixtures/images/engine.ts';
import { type Daemon, freePort, runDocker, SHOAL, tempDaemon, waitFor } from '../harness/index.ts';

const hasDocker = Bun.which('docker') !== null;
const python = Bun.which('python3') ? realpathSync(Bun.which('python3')!) : null;
let d: Daemon & AsyncDisposable;
const dir = mkdtempSync(join(tmpdir(), 'shoal-stack-it-'));

beforeAll(async () => {
  d = await tempDaemon();
  await d.start();
});
afterAll(async () => {
  await d?.[Symbol.asyncDispose]();
});

async function shoal(env: Record<string, string>, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn([SHOAL, ...args], { stdout: 'pipe', stderr: 'pipe', env: { ...d.env, ...env } });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

const byStack = (ns: string) => encodeURIComponent(JSON.stringify({ label: [`com.docker.stack.namespace=${ns}`] }));
async function leftovers(ns: string): Promise<string[]> {
  const out: string[] = [];
  for (const kind of ['services', 'networks', 'secrets', 'configs']) {
    const list = await d.json<any[]>(`/${kind}?filters=${byStack(ns)}`);
    out.push(...list.map((o) => `${kind}: ${o.Spec?.Name ?? o.Name}`));
  }
  return out;
}

async function answer(port: number): Promise<string | null> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/hello.txt`, { headers: { Connection: 'close' }, signal: AbortSignal.timeout(3000) });
    return r.ok ? await r.text() : null;
  } catch {
    return null;
  }
}

describe.skipIf(!python)('shoal stack', () => {
  test('5 services, an overlay network, a secret and a published port: deploy, answer, redeploy one change, rm', async () => {
    const published = freePort();
    const target = freePort();
    writeFileSync(join(dir, 'hello.txt'), 'hello from the stack');
    writeFileSync(join(dir, 'token.txt'), 'tok-123');
    const sleeper = (name: string, extra = '') => `
  ${name}:
    x-shoal-runtime: process
    command: ["/bin/sleep", "3600"]
    networks: [back]${extra}`;
    writeFileSync(join(dir, 'compose.yml'), `
x-common: &common
  restart_policy: { condition: any, delay: 1s }
services:
  web:
    x-shoal-runtime: process
    command: ["${python}", "-m", "http.server", "${target}", "--directory", "${dir}"]
    ports: ["${published}:${target}"]
    networks: [front, back]
    secrets: [token]
    deploy: { replicas: 1, <<: *common }
${sleeper('api', '\n    environment: { API_VERSION: "${API_VERSION:-1}" }\n    secrets: [{ source: token, target: api-token }]')}
${sleeper('worker', '\n    deploy: { replicas: 2, update_config: { parallelism: 1, order: start-first } }')}
${sleeper('cache', '\n    build: ./cache')}
${sleeper('db', '\n    deploy: { resources: { limits: { memory: 64M } } }')}
networks:
  front: {}
  back: { attachable: true }
secrets:
  token: { file: ./token.txt }
`);
    const first = await shoal({}, 'stack', 'deploy', '-c', join(dir, 'compose.yml'), 'app');
    expect(first.err).toContain('Warning: services.cache.build: not supported by shoal, ignored');
    expect(first.code).toBe(0);
    expect(first.out).toContain('Creating secret app_token');
    expect(first.out).toContain('Creating network app_back');
    for (const s of ['web', 'api', 'worker', 'cache', 'db']) expect(first.out).toContain(`Creating service app_${s}`);

    await waitFor('every stack service running', async () => {
      for (const [s, n] of [['web', 1], ['api', 1], ['worker', 2], ['cache', 1], ['db', 1]] as const) if ((await d.running(`app_${s}`)).length !== n) return false;
      return true;
    }, 30_000);
    await waitFor('the published port answering', async () => (await answer(published)) === 'hello from the stack', 20_000);
    const web = await d.json(`/services/app_web`);
    expect(web.Spec.TaskTemplate.Networks).toHaveLength(2);
    expect(web.Spec.TaskTemplate.ProcessSpec.Secrets[0].SecretName).toBe('app_token');
    const nets = await d.json<any[]>(`/networks?filters=${byStack('app')}`);
    expect(nets.map((n) => n.Name).sort()).toEqual(['app_back', 'app_front']);

    const versions = async () => Object.fromEntries((await d.json<any[]>(`/services?filters=${byStack('app')}`)).map((s) => [s.Spec.Name, s.Version.Index]));
    const before = await versions();
    const again = await shoal({}, 'stack', 'deploy', '-c', join(dir, 'compose.yml'), 'app');
    expect(again.code).toBe(0);
    expect(again.out).toContain('5 services unchanged');
    expect(await versions()).toEqual(before);

    const redeploy = await shoal({ API_VERSION: '2' }, 'stack', 'deploy', '-c', join(dir, 'compose.yml'), 'app');
    expect(redeploy.code).toBe(0);
    expect(redeploy.out).toContain('Updating service app_api');
    expect(redeploy.out).toContain('4 services unchanged');
    const after = await versions();
    for (const name of Object.keys(before)) {
      if (name === 'app_api') expect(after[name]).toBeGreaterThan(before[name]);
      else expect(after[name]).toBe(before[name]);
    }
    expect((await d.json('/services/app_api')).Spec.TaskTemplate.ProcessSpec.Env).toEqual(['API_VERSION=2']);

    expect(await d.ok('stack', 'ls')).toMatch(/app\s+5/);
    const services = await d.ok('stack', 'services', 'app');
    for (const s of ['web', 'api', 'worker', 'cache', 'db']) expect(services).toContain(`app_${s}`);
    expect(await d.ok('stack', 'ps', 'app')).toContain('app_worker.2');

    // The same file without cache: kept unless --prune.
    writeFileSync(join(dir, 'smaller.yml'), readFileSync(join(dir, 'compose.yml'), 'utf8').replace(/\n  cache:[\s\S]*?build: \.\/cache/, ''));
    expect((await shoal({ API_VERSION: '2' }, 'stack', 'deploy', '-c', join(dir, 'smaller.yml'), 'app')).out).toContain('4 services unchanged');
    expect(Object.keys(await versions())).toContain('app_cache');
    const pruned = await shoal({ API_VERSION: '2' }, 'stack', 'deploy', '--prune', '-c', join(dir, 'smaller.yml'), 'app');
    expect(pruned.out).toContain('Removing service app_cache');
    expect(Object.keys(await versions()).sort()).toEqual(['app_api', 'app_db', 'app_web', 'app_worker']);

    const rm = await shoal({}, 'stack', 'rm', 'app');
    expect(rm.code).toBe(0);
    expect(await leftovers('app')).toEqual([]);
    await waitFor('the stack\'s tasks stopped', async () => (await d.tasks()).every((t) => t.Status.State !== 'running'), 30_000);
    expect(await answer(published)).toBeNull();
    expect((await shoal({}, 'stack', 'services', 'app')).err).toContain('nothing found in stack: app');
  }, 120_000);

  test('bad compose input is refused naming the field, and nothing is created', async () => {
    writeFileSync(join(dir, 'bad.yml'), 'services:\n  a:\n    x-shoal-runtime: process\n    command: [/bin/true]\n    deploy: { replicas: many }\n');
    const r = await shoal({}, 'stack', 'deploy', '-c', join(dir, 'bad.yml'), 'bad');
    expect(r.code).toBe(1);
    expect(r.err).toContain('services.a.deploy.replicas: expected an integer');
    expect(await leftovers('bad')).toEqual([]);
  });
});

// An engine that answers, not a socket file: one left behind by a stopped engine made the test wait 60 s for a task.
const dockerEngine = (await engineForTests()).ok;

describe.skipIf(!hasDocker)('docker stack (the real docker CLI)', () => {
  async function docker(...args: string[]): Promise<{ code: number; out: string }> {
    const r = await runDocker(d, args, { timeoutMs: 120_000 });
    return { code: r.code, out: r.out + r.err };
  }

  test('deploy, ls, services, ps, rm', async () => {
    writeFileSync(join(dir, 'pw.txt'), 'pw');
    writeFileSync(join(dir, 'docker.yml'), `
services:
  box:
    image: shoal-test/busybox:latest
    command: ["sleep", "3600"]
    networks: [net]
    secrets: [pw]
    deploy: { replicas: 1, labels: { role: test } }
networks:
  net: { driver: overlay }
secrets:
  pw: { file: ./pw.txt }
`);
    const dep = await docker('stack', 'deploy', '-c', join(dir, 'docker.yml'), 'dk');
    expect(dep.code, dep.out).toBe(0);
    expect(dep.out).toContain('Creating service dk_box');
    const svc = await d.json('/services/dk_box');
    expect(svc.Spec.Labels).toMatchObject({ 'com.docker.stack.namespace': 'dk', 'com.docker.stack.image': 'shoal-test/busybox:latest', role: 'test' });
    expect((await docker('stack', 'ls')).out).toMatch(/dk\s+1/);
    expect((await docker('stack', 'services', 'dk')).out).toContain('dk_box');
    if (dockerEngine) await waitFor('the container task running', async () => (await d.running('dk_box')).length === 1, 60_000);
    const ps = await docker('stack', 'ps', 'dk');
    expect(ps.code, ps.out).toBe(0);
    expect(ps.out).toContain('dk_box.1');
    const again = await docker('stack', 'deploy', '-c', join(dir, 'docker.yml'), 'dk');
    expect(again.code, again.out).toBe(0);
    expect(again.out).toContain('Updating service dk_box');
    const rm = await docker('stack', 'rm', 'dk');
    expect(rm.code, rm.out).toBe(0);
    await waitFor('nothing left of stack dk', async () => (await leftovers('dk')).length === 0, 30_000);
  }, 120_000);
});
