import { describe, expect, test } from 'bun:test';
import { parseArgs } from './args.ts';
import { parseMount } from './runtime-opts.ts';
import { buildServiceSpec, CREATE_OPTIONS } from './service-opts.ts';

const create = (...argv: string[]) => buildServiceSpec(parseArgs(argv, CREATE_OPTIONS, { stopAtPositional: true }), {});

describe('service create --runtime container', () => {
  test('IMAGE [COMMAND] [ARG…] and every container flag', () => {
    const tt = create(
      '--runtime', 'container', '--entrypoint', '/bin/sh', '--mount', 'type=bind,source=/srv,target=/data,readonly',
      '--mount', 'type=tmpfs,target=/tmp,tmpfs-size=16M,tmpfs-mode=1777', '--mount', 'source=cache,target=/cache',
      '--hostname', 'web1', '--init', '--stop-signal', 'SIGQUIT', '--container-label', 'team=a',
      '--health-cmd', 'wget -q localhost', '--health-interval', '2s', '--health-timeout', '1s', '--health-retries', '2',
      '--health-start-period', '5s', '--limit-memory', '64M', '-e', 'A=1',
      'shoal-test/busybox:latest', '-c', 'echo hi',
    ).TaskTemplate;
    expect(tt.Runtime).toBe('container');
    expect(tt.ContainerSpec).toEqual({
      Image: 'shoal-test/busybox:latest', Args: ['-c', 'echo hi'], Env: ['A=1'], Command: ['/bin/sh'],
      Mounts: [
        { Type: 'bind', Source: '/srv', Target: '/data', ReadOnly: true },
        { Type: 'tmpfs', Target: '/tmp', TmpfsOptions: { SizeBytes: 16 * 1024 ** 2, Mode: 0o1777 } },
        { Type: 'volume', Source: 'cache', Target: '/cache' },
      ],
      Hostname: 'web1', Init: true, StopSignal: 'SIGQUIT', Labels: { team: 'a' },
      Healthcheck: { Test: ['CMD-SHELL', 'wget -q localhost'], Interval: 2e9, Timeout: 1e9, Retries: 2, StartPeriod: 5e9 },
    });
    expect(tt.Resources).toEqual({ Limits: { MemoryBytes: 64 * 1024 ** 2 } });
  });

  test('--no-healthcheck, and its conflict', () => {
    expect(create('--runtime', 'container', '--no-healthcheck', 'img').TaskTemplate.ContainerSpec!.Healthcheck).toEqual({ Test: ['NONE'] });
    expect(() => create('--runtime', 'container', '--no-healthcheck', '--health-cmd', 'true', 'img')).toThrow('--no-healthcheck conflicts');
  });

  test('bad mounts name the flag and what is wrong', () => {
    expect(() => parseMount('type=nfs,target=/x')).toThrow('type must be bind, volume or tmpfs');
    expect(() => parseMount('type=bind,source=/x')).toThrow('target is required');
    expect(() => parseMount('type=bind,target=/x,colour=red')).toThrow('unknown key "colour"');
    expect(() => parseMount('type=tmpfs,target=/x,tmpfs-mode=rwx')).toThrow('--mount');
  });

  test('flags of another runtime are refused, naming it', () => {
    expect(() => create('--mount', 'target=/x', '/bin/true')).toThrow('--mount only applies to --runtime container (this service\'s runtime is process)');
    expect(() => create('--runtime', 'container', '--kernel', '/k', 'img')).toThrow('--kernel only applies to --runtime vm');
  });
});

describe('service create --runtime vm', () => {
  test('kernel, initrd, cmdline, size and grace', () => {
    const tt = create('--runtime', 'vm', '--kernel', '/k', '--initrd', '/i', '--cmdline', 'quiet', '--limit-cpu', '2', '--limit-memory', '256M', '--stop-grace-period', '3s').TaskTemplate;
    expect(tt).toEqual({
      Runtime: 'vm', VMSpec: { Kernel: '/k', Initrd: '/i', Cmdline: 'quiet', StopGracePeriod: 3e9 },
      Resources: { Limits: { NanoCPUs: 2e9, MemoryBytes: 256 * 1024 ** 2 } },
    });
    expect(create('--runtime', 'vm', '--disk', '/d.img').TaskTemplate.VMSpec).toEqual({ Disk: '/d.img' });
  });

  test('what a VM cannot take is refused with the reason', () => {
    expect(() => create('--runtime', 'vm')).toThrow('needs --kernel PATH');
    expect(() => create('--runtime', 'vm', '--kernel', '/k', '/bin/true')).toThrow('--runtime vm takes no PROGRAM');
    expect(() => create('--runtime', 'vm', '--kernel', '/k', '-e', 'A=1')).toThrow('--env does not apply to --runtime vm');
  });
});

describe('service create --runtime <plugin>', () => {
  test('PROGRAM [ARG…], --env and --plugin-opt fill PluginSpec.<runtime>', () => {
    expect(create('--runtime', 'script', '--plugin-opt', 'Source=echo hi; sleep 1', '-e', 'A=1').TaskTemplate).toEqual({
      Runtime: 'script', PluginSpec: { script: { Source: 'echo hi; sleep 1', Env: ['A=1'] } },
    });
    expect(create('--runtime', 'wasm', '/srv/app.wasm', '--flag').TaskTemplate.PluginSpec).toEqual({ wasm: { Command: ['/srv/app.wasm', '--flag'] } });
    expect(create('--runtime', 'wasm').TaskTemplate.PluginSpec).toBeUndefined();
  });

  test('--plugin-opt is refused for built-ins and without KEY=VALUE', () => {
    expect(() => create('--runtime', 'container', '--plugin-opt', 'A=1', 'img')).toThrow('--plugin-opt only applies to a plugin\'s runtime');
    expect(() => create('--runtime', 'script', '--plugin-opt', 'Source')).toThrow('--plugin-opt');
    expect(() => create('--runtime', 'script', '--plugin-opt', 'a.b=1')).toThrow('KEY is a field name');
  });
});
