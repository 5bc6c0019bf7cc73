/** ContainerSpec → engine create body, and validation; no engine needed. */
import { describe, expect, test } from 'bun:test';
import type { ContainerInspectInfo } from 'dockerode';
import type { Task, TaskSpec } from '../../src/types/index.ts';
import { exitStatusOf } from './controller.ts';
import { engineMessage } from './engine.ts';
import { createContainerExecutor } from './index.ts';
import { containerEnv, createOptions, signalOfExitCode, validateContainerSpec } from './spec.ts';

const task = (spec: TaskSpec, id = 't1'): Task => ({
  ID: id, Version: { Index: 1 }, CreatedAt: '', UpdatedAt: '', Spec: spec, ServiceID: 's1', Slot: 1, NodeID: 'n1',
  Status: { Timestamp: '', State: 'assigned', Message: '' }, DesiredState: 'running',
});
const cs = (extra: object = {}, rest: Partial<TaskSpec> = {}): TaskSpec => ({ ContainerSpec: { Image: 'busybox:1.36', ...extra }, ...rest });

describe('container spec validation names the field', () => {
  const cases: [TaskSpec, string][] = [
    [{ Runtime: 'container' }, 'TaskTemplate.ContainerSpec: required'],
    [{ ContainerSpec: { Image: '' } }, 'ContainerSpec.Image: required'],
    [{ ContainerSpec: {} as never }, 'ContainerSpec.Image: required'],
    [cs({ Image: 'Bad Image' }), 'ContainerSpec.Image: "Bad Image" is not a valid image reference'],
    [cs({ Command: 'sh -c x' }), 'ContainerSpec.Command: must be a list'],
    [cs({ Args: [1] }), 'ContainerSpec.Args: must be a list'],
    [cs({ Env: ['NOVALUE'] }), 'ContainerSpec.Env[0]: "NOVALUE" is not KEY=VALUE'],
    [cs({ Dir: 'relative' }), 'ContainerSpec.Dir: "relative" must be an absolute path'],
    [cs({ User: 'a b' }), 'ContainerSpec.User'],
    [cs({ Hostname: '-x' }), 'ContainerSpec.Hostname'],
    [cs({ Labels: { a: 1 } }), 'ContainerSpec.Labels.a: must be a string'],
    [cs({ StopSignal: 'SIGNOPE' }), 'ContainerSpec.StopSignal: unknown signal "SIGNOPE"'],
    [cs({ StopGracePeriod: -1 }), 'ContainerSpec.StopGracePeriod'],
    [cs({ Init: 'yes' }), 'ContainerSpec.Init'],
    [cs({ Mounts: [{ Type: 'nfs', Target: '/x' }] }), 'ContainerSpec.Mounts[0].Type: "nfs" is not bind, volume or tmpfs'],
    [cs({ Mounts: [{ Type: 'bind', Source: 'rel', Target: '/x' }] }), 'ContainerSpec.Mounts[0].Source: a bind mount needs an absolute host path'],
    [cs({ Mounts: [{ Type: 'tmpfs', Target: 'x' }] }), 'ContainerSpec.Mounts[0].Target: "x" must be an absolute path'],
    [cs({ Mounts: [{ Type: 'volume', Source: '../etc', Target: '/x' }] }), 'ContainerSpec.Mounts[0].Source: "../etc" is not a valid volume name'],
    [cs({ Healthcheck: { Test: ['RUN', 'x'] } }), 'ContainerSpec.Healthcheck.Test: must start with "NONE", "CMD" or "CMD-SHELL"'],
    [cs({ Healthcheck: { Test: ['CMD'] } }), 'ContainerSpec.Healthcheck.Test: "CMD" needs a command'],
    [cs({ Healthcheck: { Test: ['CMD', 'true'], Interval: 5 } }), 'ContainerSpec.Healthcheck.Interval: must be 0 (the default) or at least 1 ms'],
    [cs({ Healthcheck: { Retries: -1 } }), 'ContainerSpec.Healthcheck.Retries'],
    [cs({}, { Resources: { Limits: { MemoryBytes: 1024 } } }), 'TaskTemplate.Resources.Limits.MemoryBytes'],
    [cs({}, { Resources: { Limits: { NanoCPUs: 0.5 } } }), 'TaskTemplate.Resources.Limits.NanoCPUs'],
  ];
  for (const [spec, want] of cases) {
    test(want, () => expect(validateContainerSpec(spec)).toStartWith(want));
  }

  test('good specs pass', () => {
    for (const image of ['busybox', 'busybox:1.36', 'shoal-test/busybox:latest', 'localhost:5000/a/b:v1', `x@sha256:${'a'.repeat(64)}`]) {
      expect(validateContainerSpec(cs({ Image: image }))).toBeNull();
    }
    expect(validateContainerSpec(cs({
      Command: ['/bin/sh'], Args: ['-c', 'x'], Env: ['A=1', 'B='], Dir: '/tmp', User: '1000:1000', Hostname: 'web-1',
      Labels: { a: 'b' }, StopSignal: 'USR1', StopGracePeriod: 1e9, Init: true,
      Mounts: [{ Type: 'bind', Source: '/tmp', Target: '/h', ReadOnly: true }, { Type: 'volume', Target: '/v' }, { Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 1 << 20 } }],
      Healthcheck: { Test: ['CMD-SHELL', 'true'], Interval: 1e9, Timeout: 1e9, Retries: 3, StartPeriod: 0 },
    }, { Resources: { Limits: { NanoCPUs: 5e8, MemoryBytes: 64 << 20 } } }))).toBeNull();
  });
});

describe('container spec → engine create body', () => {
  test('command, args, env, dir, user, hostname, labels, stop signal and timeout', () => {
    const o = createOptions(task(cs({
      Command: ['/bin/sh', '-c'], Args: ['echo hi'], Env: ['A=spec', 'B=2'], Dir: '/w', User: 'nobody', Hostname: 'h1',
      Labels: { app: 'web', [`io.shoal.task.id`]: 'spoofed' }, StopSignal: 'USR1', StopGracePeriod: 1_500_000_000,
    }), 'abc'), { A: 'injected', C: '3' });
    expect(o.name).toBe('shoal-abc');
    expect(o.Image).toBe('busybox:1.36');
    expect(o.Entrypoint).toEqual(['/bin/sh', '-c']);
    expect(o.Cmd).toEqual(['echo hi']);
    expect(o.Env).toEqual(['C=3', 'A=spec', 'B=2']);
    expect(o.WorkingDir).toBe('/w');
    expect(o.User).toBe('nobody');
    expect(o.Hostname).toBe('h1');
    expect(o.Labels).toEqual({ app: 'web', 'io.shoal.task.id': 'abc', 'io.shoal.service.id': 's1', 'io.shoal.node.id': 'n1' });
    expect(o.StopSignal).toBe('SIGUSR1');
    expect(o.StopTimeout).toBe(2);
    expect(o.Tty).toBe(false);
    expect(o.HostConfig!.RestartPolicy).toEqual({ Name: 'no' });
  });

  test('without Command/Args the image decides; limits, mounts, init and health check', () => {
    const hc = { Test: ['CMD', 'true'], Interval: 1e9, Retries: 2 };
    const o = createOptions(task(cs({
      Init: true, Healthcheck: hc,
      Mounts: [{ Type: 'bind', Source: '/srv', Target: '/data', ReadOnly: true }, { Type: 'volume', Target: '/anon' }, { Type: 'tmpfs', Target: '/t' }],
    }, { Resources: { Limits: { NanoCPUs: 5e8, MemoryBytes: 64 << 20 } } })));
    expect(o.Entrypoint).toBeUndefined();
    expect(o.Cmd).toBeUndefined();
    expect(o.Healthcheck).toEqual(hc);
    expect(o.HostConfig).toMatchObject({ Init: true, NanoCpus: 5e8, Memory: 64 << 20 });
    expect(o.HostConfig!.Mounts).toEqual([
      { Type: 'bind', Source: '/srv', Target: '/data', ReadOnly: true },
      { Type: 'volume', Source: '', Target: '/anon' },
      { Type: 'tmpfs', Source: '', Target: '/t' },
    ]);
  });

  test('env: injected first, the spec wins', () => {
    expect(containerEnv({ Image: 'x', Env: ['X=1'] }, { X: '2', Y: '3' })).toEqual(['Y=3', 'X=1']);
    expect(containerEnv({ Image: 'x' })).toEqual([]);
  });
});

describe('exit statuses and engine errors', () => {
  const info = (State: object) => ({ State: { ExitCode: 0, OOMKilled: false, Error: '', ...State } }) as ContainerInspectInfo;
  test('128+N is a signal, others exit codes', () => {
    expect(signalOfExitCode(137)).toBe('SIGKILL');
    expect(signalOfExitCode(143)).toBe('SIGTERM');
    expect(signalOfExitCode(3)).toBeUndefined();
    expect(signalOfExitCode(255)).toBeUndefined();
    expect(exitStatusOf(info({ ExitCode: 3 }))).toEqual({ exitCode: 3, message: 'exit code 3' });
    expect(exitStatusOf(info({ ExitCode: 137, OOMKilled: true }))).toEqual({
      exitCode: 137, signal: 'SIGKILL', message: 'killed by SIGKILL, exit code 137 (out of memory: killed by the kernel)',
    });
  });
  test("the engine's words are kept", () => {
    expect(engineMessage({ statusCode: 404, json: { message: 'No such image: x' }, message: '(HTTP code 404) no such image - No such image: x ' })).toBe('No such image: x');
    expect(engineMessage(new Error('(HTTP code 500) server error - pull access denied '))).toBe('pull access denied');
    expect(engineMessage(new Error('connect ENOENT /nope.sock'))).toBe('connect ENOENT /nope.sock');
  });
});

describe('container executor without an engine', () => {
  test('fingerprint is unhealthy and says where it looked and why', async () => {
    const exec = createContainerExecutor({ socketPath: '/nonexistent/docker.sock' });
    expect(exec.name).toBe('container');
    expect(exec.capabilities).toMatchObject({ recover: true, isolation: true, logsFollow: true });
    const fp = await exec.fingerprint(AbortSignal.timeout(5_000));
    expect(fp.healthy).toBe(false);
    expect(fp.message).toContain('Docker Engine at unix:///nonexistent/docker.sock not reachable');
    expect(fp.message).toContain('ENOENT');
  });
});

describe('secrets and configs', () => {
  test('each file is bind-mounted read-only from the task tmpfs: secrets under /run/secrets, configs under /, absolute targets as given', () => {
    const f = (kind: 'secret' | 'config', target: string, path: string) => ({ kind, id: 'x', name: 'x', target, path, uid: 0, gid: 0, mode: 0o444 });
    const files = { dir: '/run/t', secretsDir: '/run/t/secrets', configsDir: '/run/t/configs', files: [f('secret', 'pw', '/run/t/secrets/pw'), f('config', 'app.conf', '/run/t/configs/app.conf'), f('secret', '/etc/key', '/run/t/secrets/file-2')] };
    const o = createOptions(task(cs({ Mounts: [{ Type: 'tmpfs', Target: '/t' }] })), {}, undefined, files);
    expect(o.HostConfig!.Mounts).toEqual([
      { Type: 'tmpfs', Source: '', Target: '/t' },
      { Type: 'bind', Source: '/run/t/secrets/pw', Target: '/run/secrets/pw', ReadOnly: true },
      { Type: 'bind', Source: '/run/t/configs/app.conf', Target: '/app.conf', ReadOnly: true },
      { Type: 'bind', Source: '/run/t/secrets/file-2', Target: '/etc/key', ReadOnly: true },
    ] as never);
  });
});
