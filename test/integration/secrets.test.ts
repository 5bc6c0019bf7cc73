/**
 * Secrets and configs through dist/shoal, as a user drives them: created from standard input, never
 * shown back; a process task and a container task read theirs (mode and owner as asked); the bytes
 * are nowhere on disk afterwards (the data dir, Docker's data root); removal while in use is refused
 * naming the service; and in a two-host cluster the host without such a task never receives it.
 *
 * "Nowhere on disk" means the raw bytes; the managers' raft log holds the object as the API took it
 * (base64 inside the log entry), sealed with the manager's data key (test/integration/autolock.test.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createHash, randomUUID } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { engineForTests, TEST_IMAGE } from '../fixtures/images/engine.ts';
import { guestAssets, guestCmdline } from '../fixtures/vm/guest.ts';
import { type CliResult, Cluster, type Daemon, SHOAL, tempDaemon, waitFor } from '../harness/index.ts';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

async function cliStdin(d: Daemon, input: string, ...args: string[]): Promise<CliResult> {
  const p = Bun.spawn([SHOAL, ...args], { stdin: Buffer.from(input), stdout: 'pipe', stderr: 'pipe', env: d.env });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

/**
 * Files under `dir` that contain `needle` (grep exits 1 when none do). A task directory removed
 * while grep walks it makes grep exit 2: walk again, a bounded number of times.
 */
function filesWith(dir: string, needle: string): string[] {
  let err = '';
  for (let i = 0; i < 5; i++) {
    const r = Bun.spawnSync(['grep', '-rlaF', '--devices=skip', '-e', needle, dir], { stdout: 'pipe', stderr: 'pipe' });
    if (r.exitCode <= 1) return r.stdout.toString().split('\n').filter(Boolean);
    err = r.stderr.toString();
  }
  throw new Error(`grep ${dir}: ${err}`);
}

const mountsOf = (taskId: string) => readFileSync('/proc/self/mounts', 'utf8').split('\n').filter((l) => l.includes(taskId));

async function logsOf(d: Daemon, service: string): Promise<string> {
  return (await d.cli('service', 'logs', service)).stdout;
}

const root = process.getuid?.() === 0;

describe('secrets and configs on one host', () => {
  let d: Daemon & AsyncDisposable;
  beforeAll(async () => {
    d = await tempDaemon();
    await d.start();
  });
  afterAll(async () => {
    await d?.[Symbol.asyncDispose]();
  });

  test.skipIf(!root)('a process task reads its secret from a tmpfs with the mode and owner asked; no trace on disk after; rm in use is refused', async () => {
    const value = `s3cret-${randomUUID()}`;
    const created = await cliStdin(d, value, 'secret', 'create', '--label', 'team=a', 'pw', '-');
    expect(created.code).toBe(0);
    const id = created.stdout.trim();
    const ls = await d.ok('secret', 'ls');
    expect(ls).toContain('pw');
    const inspect = await d.ok('secret', 'inspect', 'pw');
    expect(JSON.parse(inspect)[0]).toMatchObject({ ID: id, Spec: { Name: 'pw', Labels: { team: 'a' } } });
    for (const out of [inspect, await d.ok('secret', 'ls', '--format', 'json')]) {
      expect(out).not.toContain(value);
      expect(out).not.toContain(Buffer.from(value).toString('base64'));
    }
    expect((await cliStdin(d, value, 'secret', 'create', 'pw', '-')).stderr).toContain('already in use');

    await d.ok('service', 'create', '-d', '--name', 'reader', '--restart-condition', 'none',
      '--secret', 'source=pw,target=pw,uid=65534,gid=65534,mode=0400',
      '/bin/sh', '-c', 'f="$SHOAL_SECRETS_DIR/pw"; stat -c "mode=%a owner=%u:%g" "$f"; sha256sum < "$f"; exec sleep 1000');
    const [task] = await waitFor('the reader running', async () => { const r = await d.running('reader'); return r.length ? r : null; }, 30_000);
    const logs = await waitFor('the reader output', async () => { const l = await logsOf(d, 'reader'); return l.includes(sha(value)) ? l : null; }, 15_000);
    expect(logs).toContain('mode=400 owner=65534:65534');
    const mounts = mountsOf(task.ID);
    expect(mounts.length).toBe(1);
    expect(mounts[0]!.split(' ')[2]).toBe('tmpfs');
    expect(d.output).toContain(`holds secret pw (${id})`);

    const rm = await d.cli('secret', 'rm', 'pw');
    expect(rm.code).toBe(1);
    expect(rm.stderr).toContain('secret pw is in use by the following service: reader');

    // Rotation: a new secret at the same target, rolled out as any service update.
    const value2 = `s3cret-${randomUUID()}`;
    expect((await cliStdin(d, value2, 'secret', 'create', 'pw2', '-')).code).toBe(0);
    await d.ok('service', 'update', '-d', '--secret-rm', 'pw', '--secret-add', 'source=pw2,target=pw,mode=0400', 'reader');
    await waitFor('the task tmpfs of the old task unmounted', () => mountsOf(task.ID).length === 0, 30_000);
    await waitFor('the worker forgot the old secret', () => d.output.includes(`forgot secret ${id}`), 15_000);
    await waitFor('the new task read the new secret', async () => (await logsOf(d, 'reader')).includes(sha(value2)) || null, 30_000);
    expect((await d.cli('secret', 'rm', 'pw')).code).toBe(0);
    const [task2] = await d.running('reader');

    await d.ok('service', 'rm', 'reader');
    await waitFor('the task tmpfs unmounted', () => mountsOf(task2.ID).length === 0, 30_000);
    expect(filesWith(d.dataDir, value)).toEqual([]);
    expect(filesWith(d.dataDir, value2)).toEqual([]);
    expect((await d.cli('secret', 'rm', 'pw2')).code).toBe(0);
  }, 90_000);

  test.skipIf(!root)('a process running as another user reads its own secret; its tmpfs is closed to everyone else', async () => {
    const value = `u-s3cret-${randomUUID()}`;
    expect((await cliStdin(d, value, 'secret', 'create', 'upw', '-')).code).toBe(0);
    await d.ok('service', 'create', '-d', '--name', 'asnobody', '--restart-condition', 'none', '--user', 'nobody',
      '--secret', 'source=upw,uid=65534,gid=65534,mode=0400',
      '/bin/sh', '-c', 'echo id=$(id -u) dir=$(stat -c "%a %u" "$SHOAL_SECRETS_DIR/..") sum=$(sha256sum < "$SHOAL_SECRETS_DIR/upw"); exec sleep 1000');
    const [task] = await waitFor('the task running', async () => { const r = await d.running('asnobody'); return r.length ? r : null; }, 30_000);
    const logs = await waitFor('its output', async () => { const l = await logsOf(d, 'asnobody'); return l.includes('sum=') ? l : null; }, 15_000);
    expect(logs).toContain(`id=65534 dir=500 65534 sum=${sha(value)}`);
    // Another unprivileged user cannot even enter the task's tmpfs.
    const dir = mountsOf(task.ID)[0]!.split(' ')[1]!;
    const other = Bun.spawnSync(['setpriv', '--reuid=1', '--regid=1', '--clear-groups', 'cat', `${dir}/secrets/upw`], { stderr: 'pipe' });
    expect(other.exitCode).not.toBe(0);
    expect(other.stderr.toString()).toContain('Permission denied');
    await d.ok('service', 'rm', 'asnobody');
    await waitFor('the task tmpfs unmounted', () => mountsOf(task.ID).length === 0, 30_000);
  }, 60_000);

  test.skipIf(!root)('kill -9 of the daemon: the task runs on with its files; the restarted daemon re-attaches and still cleans up', async () => {
    await using d2 = await tempDaemon();
    await d2.start();
    const value = `r-s3cret-${randomUUID()}`;
    expect((await cliStdin(d2, value, 'secret', 'create', 'rpw', '-')).code).toBe(0);
    await d2.ok('service', 'create', '-d', '--name', 'durable', '--secret', 'rpw', '/bin/sh', '-c', 'exec sleep 3600');
    const [before] = await waitFor('the task running', async () => { const r = await d2.running('durable'); return r.length ? r : null; }, 30_000);
    await d2.kill9();
    expect(mountsOf(before.ID).length).toBe(1); // the tmpfs outlives the daemon, as the task does
    await d2.start(false);
    const [after] = await waitFor('the task re-attached', async () => { const r = await d2.running('durable'); return r.length ? r : null; }, 30_000);
    expect(after.ID).toBe(before.ID);
    expect(after.Status.ContainerStatus.PID).toBe(before.Status.ContainerStatus.PID);
    await d2.ok('service', 'rm', 'durable');
    await waitFor('the task tmpfs unmounted', () => mountsOf(before.ID).length === 0, 30_000);
    expect(filesWith(d2.dataDir, value)).toEqual([]);
  }, 90_000);

  test('past 500 KiB: a clear error', async () => {
    const r = await cliStdin(d, 'x'.repeat(500 * 1024 + 1), 'secret', 'create', 'big', '-');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('the limit is 512000 bytes');
  });
});

describe('secrets and configs for a plugin\'s runtime and an Isolation.Mount process', () => {
  const pluginDir = mkdtempSync(join(tmpdir(), 'shoal-it-secret-plugins-'));
  copyFileSync(resolve(import.meta.dir, '../../plugins/examples/script/script.ts'), join(pluginDir, 'script.ts'));
  let d: Daemon & AsyncDisposable;
  beforeAll(async () => {
    d = await tempDaemon(['--plugin-dir', pluginDir]);
    await d.start();
  });
  afterAll(async () => {
    await d?.[Symbol.asyncDispose]();
    rmSync(pluginDir, { recursive: true, force: true });
  });

  test.skipIf(!root)('the example plugin\'s script reads its secret and config from the tmpfs the contract hands it; no bytes on disk', async () => {
    const value = `p-s3cret-${randomUUID()}`;
    expect((await cliStdin(d, value, 'secret', 'create', 'ppw', '-')).code).toBe(0);
    expect((await cliStdin(d, 'plugin-conf\n', 'config', 'create', 'pconf', '-')).code).toBe(0);
    await d.ok('service', 'create', '-d', '--name', 'pscript', '--runtime', 'script', '--restart-condition', 'none',
      '--secret', 'source=ppw,mode=0400', '--config', 'pconf',
      '--plugin-opt', 'Source=echo sum=$(sha256sum < "$SHOAL_SECRETS_DIR/ppw") $(stat -c mode=%a "$SHOAL_SECRETS_DIR/ppw"); cat "$SHOAL_CONFIGS_DIR/pconf"; exec sleep 1000');
    const [task] = await waitFor('the script running', async () => { const r = await d.running('pscript'); return r.length ? r : null; }, 30_000);
    expect(task.Spec.PluginSpec.script.Secrets[0]).toMatchObject({ SecretName: 'ppw', File: { Name: 'ppw', Mode: 0o400 } });
    const logs = await waitFor('the script output', async () => { const l = await logsOf(d, 'pscript'); return l.includes('plugin-conf') ? l : null; }, 15_000);
    expect(logs).toContain(`sum=${sha(value)}`);
    expect(logs).toContain('mode=400');
    expect(mountsOf(task.ID).map((m) => m.split(' ')[2])).toEqual(['tmpfs']);
    expect(filesWith(d.dataDir, value)).toEqual([]);
    await d.ok('service', 'rm', 'pscript');
    await waitFor('the task tmpfs unmounted', () => mountsOf(task.ID).length === 0, 30_000);
    expect(filesWith(d.dataDir, value)).toEqual([]);
  }, 60_000);

  test.skipIf(!root)('Isolation.Mount: the process sees its secret at /run/secrets/<target> and its config at /run/configs/<target>; the host does not', async () => {
    const value = `m-s3cret-${randomUUID()}`;
    expect((await cliStdin(d, value, 'secret', 'create', 'mpw', '-')).code).toBe(0);
    expect((await cliStdin(d, 'mount-conf\n', 'config', 'create', 'mconf', '-')).code).toBe(0);
    const script = 'echo sum=$(sha256sum < /run/secrets/db-pass) $(stat -c mode=%a /run/secrets/db-pass) env=$SHOAL_SECRETS_DIR; cat /run/configs/app.conf; exec sleep 1000';
    await d.ok('service', 'create', '-d', '--name', 'isolated', '--restart-condition', 'none', '--user', 'nobody',
      '--isolation', 'mount,pid', '--stop-grace-period', '1s',
      '--secret', 'source=mpw,target=db-pass,uid=65534,gid=65534,mode=0400', '--config', 'source=mconf,target=app.conf',
      '/bin/sh', '-c', script);
    expect((await d.json<any>('/services/isolated')).Spec.TaskTemplate.ProcessSpec.Isolation).toEqual({ Mount: true, Pid: true });
    const [task] = await waitFor('the task running', async () => { const t = await d.running('isolated'); return t.length ? t : null; }, 30_000);
    const logs = await waitFor('its output', async () => { const l = await logsOf(d, 'isolated'); return l.includes('mount-conf') ? l : null; }, 15_000);
    expect(logs).toContain(`sum=${sha(value)} - mode=400 env=/run/secrets`);
    // Only inside its namespace: the host has no file there and no mount of it.
    expect(filesWith('/run/secrets', value)).toEqual([]);
    expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain(' /run/secrets ');
    expect(mountsOf(task.ID).map((m) => m.split(' ')[2])).toEqual(['tmpfs']);
    expect(filesWith(d.dataDir, value)).toEqual([]);
    await d.ok('service', 'rm', 'isolated');
    await waitFor('the task tmpfs unmounted', () => mountsOf(task.ID).length === 0, 30_000);
    expect(filesWith(d.dataDir, value)).toEqual([]);
  }, 60_000);
});

const engine = await engineForTests();

describe('secrets and configs in a container', () => {
  if (!engine.ok || !root) {
    test.skip(`needs a Docker Engine and root: ${engine.ok ? 'not root' : engine.reason}`, () => {});
    return;
  }
  test('/run/secrets/NAME and a config at its target, bind-mounted from a host tmpfs; the engine data root never holds the bytes', async () => {
    await using d = await tempDaemon();
    await d.start();
    const value = `c-s3cret-${randomUUID()}`;
    expect((await cliStdin(d, value, 'secret', 'create', 'cpw', '-')).code).toBe(0);
    expect((await cliStdin(d, 'listen 8080;\n', 'config', 'create', 'app', '-')).code).toBe(0);
    await d.ok('service', 'create', '-d', '--name', 'c', '--runtime', 'container', '--restart-condition', 'none',
      '--secret', 'cpw', '--config', 'source=app,target=/etc/app.conf', TEST_IMAGE,
      'sh', '-c', 'sha256sum /run/secrets/cpw; cat /etc/app.conf; stat -c "mode=%a" /run/secrets/cpw; exec sleep 1000');
    const [task] = await waitFor('the container running', async () => { const r = await d.running('c'); return r.length ? r : null; }, 60_000);
    const logs = await waitFor('the container output', async () => { const l = await logsOf(d, 'c'); return l.includes(sha(value)) ? l : null; }, 20_000);
    expect(logs).toContain('listen 8080;');
    expect(logs).toContain('mode=444');
    // While it runs: the engine bind-mounts the file, it never copies it.
    expect(filesWith('/var/lib/docker', value)).toEqual([]);
    await d.ok('service', 'rm', 'c');
    await waitFor('the task tmpfs unmounted', () => mountsOf(task.ID).length === 0, 30_000);
    expect(filesWith('/var/lib/docker', value)).toEqual([]);
    expect(filesWith(d.dataDir, value)).toEqual([]);
  }, 120_000);
});

const assets = guestAssets();

describe('secrets in a VM', () => {
  if (typeof assets === 'string' || !root) {
    test.skip(`needs QEMU, a guest kernel and root: ${typeof assets === 'string' ? assets : 'not root'}`, () => {});
    return;
  }
  test('the guest finds its files on the read-only disk with serial shoal-files, with mode and owner; nothing stays on disk', async () => {
    await using d = await tempDaemon();
    await d.start();
    const value = `v-s3cret-${randomUUID()}`;
    expect((await cliStdin(d, value, 'secret', 'create', 'vpw', '-')).code).toBe(0);
    const cmd = [
      'for b in /sys/block/vd*; do [ "$(cat $b/serial 2>/dev/null)" = shoal-files ] && disk=/dev/${b##*/}; done',
      'echo disk=$disk ro=$(cat /sys/block/${disk#/dev/}/ro)',
      'mkdir -p /tmp/f && mount -t tmpfs tmpfs /tmp/f && tar -x -f $disk -C /tmp/f',
      'stat -c "mode=%a owner=%u:%g" /tmp/f/secrets/vpw',
      'echo sum=$(sha256sum < /tmp/f/secrets/vpw)',
      'exec sleep 1000',
    ].join('; ');
    await d.ok('service', 'create', '-d', '--name', 'v', '--runtime', 'vm', '--restart-condition', 'none',
      '--kernel', assets.kernel, '--initrd', assets.initrd, '--cmdline', guestCmdline(cmd),
      '--secret', 'source=vpw,target=vpw,uid=1000,gid=1000,mode=0440');
    const [task] = await waitFor('the VM running', async () => { const r = await d.running('v'); return r.length ? r : null; }, 60_000);
    const logs = await waitFor('the guest output', async () => { const l = await logsOf(d, 'v'); return l.includes('sum=') ? l : null; }, 90_000);
    expect(logs).toMatch(/disk=\/dev\/vd[a-z] ro=1/);
    expect(logs).toContain('mode=440 owner=1000:1000');
    expect(logs).toContain(`sum=${sha(value)}`);
    await d.ok('service', 'rm', 'v');
    await waitFor('the task tmpfs unmounted', () => mountsOf(task.ID).length === 0, 60_000);
    expect(filesWith(d.dataDir, value)).toEqual([]);
  }, 180_000);
});

test.skipIf(!root)('two hosts: only the host running a task that uses the secret receives it', async () => {
  await using fleet = Cluster.loopback();
  const m1 = await fleet.add({ init: true });
  const token = (await m1.ok('cluster', 'join-token', '-q', 'worker')).trim();
  const w1 = await fleet.add({ join: [m1.addr, token] });
  await waitFor('2 ready nodes', async () => { const ns = await m1.json<any[]>('/nodes'); return ns.length === 2 && ns.every((n) => n.Status.State === 'ready'); }, 30_000);
  const value = `f-s3cret-${randomUUID()}`;
  const id = (await cliStdin(m1, value, 'secret', 'create', 'fpw', '-')).stdout.trim();
  expect(id).toMatch(/^[0-9a-z]+$/);
  await m1.ok('service', 'create', '-d', '--name', 'here', '--replicas', '2', '--constraint', 'node.role==manager', '--secret', 'fpw',
    '/bin/sh', '-c', 'sha256sum < "$SHOAL_SECRETS_DIR/fpw"; exec sleep 1000');
  // A service without secrets on every host: the worker has tasks, and a session that carried them.
  await m1.ok('service', 'create', '-d', '--name', 'everywhere', '--mode', 'global', '/bin/sleep', '1000');
  await waitFor('both secret tasks running', async () => (await m1.running('here')).length === 2 || null, 30_000);
  await waitFor('the global service on both hosts', async () => (await m1.running('everywhere')).length === 2 || null, 30_000);
  await waitFor('the manager host holds it', () => m1.output.includes(`holds secret fpw (${id})`), 15_000);
  expect(w1.output).not.toContain('holds secret');
  expect(filesWith(w1.dataDir, value)).toEqual([]);
  // Moving the tasks to the worker is a service update like any other: now it receives it.
  await m1.ok('service', 'update', '-d', '--constraint-rm', 'node.role==manager', '--constraint-add', 'node.role==worker', 'here');
  await waitFor('the worker holds it', () => w1.output.includes(`holds secret fpw (${id})`), 30_000);
  await waitFor('the manager host forgot it', () => m1.output.includes(`forgot secret ${id}`), 30_000);
}, 120_000);
