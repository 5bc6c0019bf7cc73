/**
 * Stacks from standard input (`-c -`) on dist/shoal: `shoal stack deploy -c -` (relative paths in
 * the file resolve against the working directory), the real docker CLI's `docker stack deploy -c -`,
 * and a compose service with `x-shoal-runtime: vm` that boots the test guest (skipped, saying why,
 * without QEMU and a guest kernel: .ci/install-qemu.sh).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engineForTests, TEST_IMAGE } from '../fixtures/images/engine.ts';
import { guestAssets, guestCmdline } from '../fixtures/vm/guest.ts';
import { type Daemon, SHOAL, tempDaemon, waitFor } from '../harness/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'shoal-stack-stdin-'));
let d: Daemon & AsyncDisposable;
beforeAll(async () => {
  d = await tempDaemon();
  await d.start();
});
afterAll(async () => {
  await d?.[Symbol.asyncDispose]();
  rmSync(dir, { recursive: true, force: true });
});

async function run(argv: string[], input: string, env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn(argv, { cwd: dir, stdin: Buffer.from(input), stdout: 'pipe', stderr: 'pipe', env: { ...d.env, ...env } });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}
const logsOf = async (service: string) => (await d.cli('service', 'logs', service)).stdout;

test('shoal stack deploy -c -: the compose file from standard input, its relative paths against the working directory', async () => {
  writeFileSync(join(dir, 'motd.txt'), 'hello from stdin');
  const compose = `
services:
  echo:
    x-shoal-runtime: process
    command: ["/bin/sh", "-c", "echo from-stdin-stack; exec sleep 3600"]
    configs: [motd]
    stop_grace_period: 1s
configs:
  motd: { file: ./motd.txt }
`;
  const r = await run([SHOAL, 'stack', 'deploy', '-c', '-', 'piped'], compose);
  expect(r.code, r.err).toBe(0);
  expect(r.out).toContain('Creating config piped_motd');
  expect(r.out).toContain('Creating service piped_echo');
  await waitFor('the piped stack\'s service output', async () => (await logsOf('piped_echo')).includes('from-stdin-stack') || null, 30_000);
  const cfg = JSON.parse(await d.ok('config', 'inspect', 'piped_motd'))[0];
  expect(Buffer.from(cfg.Spec.Data, 'base64').toString()).toBe('hello from stdin');
  // The same input again changes nothing.
  const again = await run([SHOAL, 'stack', 'deploy', '-c', '-', 'piped'], compose);
  expect(again.code, again.err).toBe(0);
  expect(again.out).toContain('1 service unchanged');
  await d.ok('stack', 'rm', 'piped');
});

const hasDockerCli = Bun.which('docker') !== null;
const engine = await engineForTests();

describe.skipIf(!hasDockerCli)('docker stack deploy -c - (the real docker CLI)', () => {
  test('reads the compose file from standard input', async () => {
    const compose = `
services:
  box:
    image: ${TEST_IMAGE}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
`;
    const r = await run(['docker', 'stack', 'deploy', '-c', '-', 'dpiped'], compose, { DOCKER_HOST: `unix://${d.socket}`, DOCKER_CLI_HINTS: 'false' });
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out + r.err).toContain('Creating service dpiped_box');
    const svc = await d.json<any>('/services/dpiped_box');
    expect(svc.Spec.Labels).toMatchObject({ 'com.docker.stack.namespace': 'dpiped' });
    expect(svc.Spec.TaskTemplate.ContainerSpec.Image).toBe(TEST_IMAGE);
    if (engine.ok) await waitFor('the container task running', async () => (await d.running('dpiped_box')).length === 1 || null, 60_000);
    await d.ok('stack', 'rm', 'dpiped');
  }, 90_000);
});

const assets = guestAssets();

describe('a compose service with x-shoal-runtime: vm', () => {
  if (typeof assets === 'string' || process.getuid?.() !== 0) {
    test.skip(`needs QEMU, a guest kernel and root: ${typeof assets === 'string' ? assets : 'not root'}`, () => {});
    return;
  }
  test('boots the guest given by x-shoal-vm (from standard input too) and its output is the service log', async () => {
    const compose = `
services:
  guest:
    x-shoal-runtime: vm
    x-shoal-vm:
      kernel: ${assets.kernel}
      initrd: ${assets.initrd}
      cmdline: "${guestCmdline('echo hello-from-a-stack-vm; exec sleep 1000')}"
    stop_grace_period: 2s
    deploy: { resources: { limits: { memory: 128M } } }
`;
    const r = await run([SHOAL, 'stack', 'deploy', '-c', '-', 'vms'], compose);
    expect(r.code, r.err).toBe(0);
    const svc = await d.json<any>('/services/vms_guest');
    expect(svc.Spec.TaskTemplate).toMatchObject({ Runtime: 'vm', VMSpec: { Kernel: assets.kernel, Initrd: assets.initrd } });
    await waitFor('the VM running', async () => (await d.running('vms_guest')).length === 1 || null, 60_000);
    await waitFor('the guest\'s output in the service logs', async () => (await logsOf('vms_guest')).includes('hello-from-a-stack-vm') || null, 90_000);
    await d.ok('stack', 'rm', 'vms');
    await waitFor('the VM stopped', async () => (await d.tasks()).every((t) => t.ServiceID !== svc.ID), 60_000);
  }, 180_000);
});
