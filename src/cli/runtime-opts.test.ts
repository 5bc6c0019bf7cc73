import { describe, expect, test } from 'bun:test';
import { parseArgs } from './args.ts';
import type { ServiceSpec } from '../types/index.ts';
import { parseMount } from './runtime-opts.ts';
import { applyServiceUpdate, buildServiceSpec, CREATE_OPTIONS, UPDATE_OPTIONS } from './service-opts.ts';

const create = (...argv: string[]) => buildServiceSpec(parseArgs(argv, CREATE_OPTIONS, { stopAtPositional: true }), {});
const update = (spec: ServiceSpec, ...argv: string[]) => applyServiceUpdate(spec, parseArgs(argv, UPDATE_OPTIONS), {});

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
    expect(create('--runtime', 'wasm', '--stop-grace-period', '2s').TaskTemplate.PluginSpec).toEqual({ wasm: { StopGracePeriod: 2e9 } });
  });

  test('--plugin-opt is refused for built-ins and without KEY=VALUE', () => {
    expect(() => create('--runtime', 'container', '--plugin-opt', 'A=1', 'img')).toThrow('--plugin-opt only applies to a plugin\'s runtime');
    expect(() => create('--runtime', 'script', '--plugin-opt', 'Source')).toThrow('--plugin-opt');
    expect(() => create('--runtime', 'script', '--plugin-opt', 'a.b=1')).toThrow('KEY is a field name');
  });
});

describe('service update --runtime container', () => {
  const base = create(
    '--runtime', 'container', '--entrypoint', '/bin/sh', '--mount', 'type=bind,source=/srv,target=/data,readonly',
    '--mount', 'source=cache,target=/cache', '--hostname', 'web1', '--init', '--stop-signal', 'SIGQUIT',
    '--container-label', 'team=a', '--container-label', 'tier=front', '--health-cmd', 'true', '--health-interval', '2s',
    'img:1', 'arg',
  );
  const cs = (s: ServiceSpec) => s.TaskTemplate.ContainerSpec!;

  test('each flag changes its field, and only it', () => {
    const s = update(base, '--mount-add', 'type=tmpfs,target=/tmp,tmpfs-size=1M', '--mount-add', 'type=bind,source=/new,target=/data',
      '--mount-rm', '/cache', '--hostname', 'web2', '--init=false', '--stop-signal', 'SIGINT', '--entrypoint', '/bin/bash',
      '--container-label-add', 'team=b', '--container-label-add', 'zone=eu', '--container-label-rm', 'tier',
      '--health-retries', '4', '--health-timeout', '1s', '--health-start-period', '3s');
    expect(cs(s)).toEqual({
      Image: 'img:1', Args: ['arg'], Command: ['/bin/bash'],
      Mounts: [{ Type: 'tmpfs', Target: '/tmp', TmpfsOptions: { SizeBytes: 1024 ** 2 } }, { Type: 'bind', Source: '/new', Target: '/data' }],
      Hostname: 'web2', StopSignal: 'SIGINT', Labels: { team: 'b', zone: 'eu' },
      Healthcheck: { Test: ['CMD-SHELL', 'true'], Interval: 2e9, Timeout: 1e9, Retries: 4, StartPeriod: 3e9 },
    });
    expect(cs(base).Init).toBe(true); // the current spec is not mutated
    expect(cs(update(create('--runtime', 'container', 'img'), '--init')).Init).toBe(true);
    expect(cs(update(base, '--health-cmd', 'wget -q localhost')).Healthcheck).toEqual({ Test: ['CMD-SHELL', 'wget -q localhost'], Interval: 2e9 });
    expect(update(base, '--replicas', '2').TaskTemplate.ContainerSpec).toEqual(cs(base)); // no container flag: unchanged
  });

  test('removals: -rm of every item, and "" resets to the image\'s', () => {
    const s = update(base, '--mount-rm', '/data', '--mount-rm', '/cache', '--container-label-rm', 'team', '--container-label-rm', 'tier',
      '--entrypoint', '', '--hostname', '', '--stop-signal', '', '--health-cmd', '', '--health-interval', '0');
    expect(cs(s)).toEqual({ Image: 'img:1', Args: ['arg'], Init: true, Healthcheck: { Interval: 0 } });
    expect(cs(update(base, '--mount-rm', '/nowhere')).Mounts).toEqual(cs(base).Mounts);
  });

  test('--no-healthcheck, and back to the image\'s check', () => {
    const off = update(base, '--no-healthcheck');
    expect(cs(off).Healthcheck).toEqual({ Test: ['NONE'] });
    expect(cs(update(off, '--no-healthcheck=false')).Healthcheck).toBeUndefined();
    expect(cs(update(off, '--health-retries', '2')).Healthcheck).toEqual({ Retries: 2 });
    expect(() => update(base, '--no-healthcheck', '--health-retries', '2')).toThrow('--no-healthcheck conflicts with --health-* options');
  });

  test('bad values are refused as at create, naming the update flag', () => {
    expect(() => update(base, '--mount-add', 'type=nfs,target=/x')).toThrow('invalid value "type=nfs,target=/x" for --mount-add: type must be bind, volume or tmpfs');
    expect(() => update(base, '--mount-add', 'type=bind,source=/x')).toThrow('target is required');
    expect(() => update(base, '--mount-add', 'target=/x', '--mount-add', 'type=tmpfs,target=/x')).toThrow('target /x is given twice');
    expect(() => update(base, '--container-label-add', '=x')).toThrow('for --container-label-add');
    expect(() => update(base, '--health-interval', 'soon')).toThrow('invalid value "soon" for --health-interval');
    expect(() => update(base, '--health-retries', '-1')).toThrow('for --health-retries');
    expect(() => update(base, '--init=maybe')).toThrow('expected true or false');
  });

  test('container flags on another runtime are refused, naming flag and runtime', () => {
    const proc = create('/bin/sleep', '1');
    for (const flag of ['--mount-add', '--mount-rm', '--hostname', '--entrypoint', '--stop-signal', '--container-label-add', '--container-label-rm']) {
      expect(() => update(proc, flag, 'x=/y')).toThrow(`${flag} only applies to --runtime container (this service's runtime is process)`);
    }
    expect(() => update(proc, '--init')).toThrow('--init only applies to --runtime container');
    expect(() => update(create('--runtime', 'mock'), '--no-healthcheck')).toThrow('--no-healthcheck only applies to --runtime container, process or vm (this service\'s runtime is mock)');
    expect(() => update(create('--runtime', 'vm', '--kernel', '/k'), '--mount-rm', '/x')).toThrow('this service\'s runtime is vm');
    expect(() => update(create('--runtime', 'script'), '--hostname', 'h')).toThrow('--hostname only applies to --runtime container (this service\'s runtime is script)');
  });
});

describe('service update --runtime vm', () => {
  const base = create('--runtime', 'vm', '--kernel', '/k1', '--initrd', '/i1', '--cmdline', 'quiet', '--limit-memory', '128M');
  test('kernel, initrd, cmdline, disk, grace; resources through the common flags', () => {
    const s = update(base, '--kernel', '/k2', '--initrd', '/i2', '--cmdline', 'console=ttyS0', '--stop-grace-period', '2s', '--limit-cpu', '2');
    expect(s.TaskTemplate.VMSpec).toEqual({ Kernel: '/k2', Initrd: '/i2', Cmdline: 'console=ttyS0', StopGracePeriod: 2e9 });
    expect(s.TaskTemplate.Resources).toEqual({ Limits: { NanoCPUs: 2e9, MemoryBytes: 128 * 1024 ** 2 } });
    expect(base.TaskTemplate.VMSpec).toEqual({ Kernel: '/k1', Initrd: '/i1', Cmdline: 'quiet' });
  });
  test('"" removes a field; from a kernel to a disk', () => {
    expect(update(base, '--initrd', '', '--cmdline', '').TaskTemplate.VMSpec).toEqual({ Kernel: '/k1' });
    expect(update(base, '--kernel', '', '--initrd', '', '--cmdline', '', '--disk', '/d.img').TaskTemplate.VMSpec).toEqual({ Disk: '/d.img' });
  });
  test('an update that cannot boot is refused; VM flags elsewhere are refused', () => {
    expect(() => update(base, '--kernel', '', '--disk', '/d.img')).toThrow('--initrd needs --kernel');
    expect(() => update(base, '--kernel', '')).toThrow('a VM service needs a kernel or a disk: this update would leave neither');
    expect(() => update(base, '--args', 'x')).toThrow('--args does not apply to --runtime vm');
    expect(() => update(base, '--plugin-opt-add', 'A=1')).toThrow('--plugin-opt-add only applies to a plugin\'s runtime (vm is built in)');
    expect(() => update(create('--runtime', 'container', 'img'), '--kernel', '/k')).toThrow('--kernel only applies to --runtime vm (this service\'s runtime is container)');
    expect(() => update(create('/bin/true'), '--cmdline', 'x')).toThrow('--cmdline only applies to --runtime vm (this service\'s runtime is process)');
  });
});

describe('service update --runtime <plugin>', () => {
  const base = create('--runtime', 'script', '--plugin-opt', 'Source=echo hi', '--plugin-opt', 'Dir=/tmp', '-e', 'A=1', '-e', 'B=2');
  const own = (s: ServiceSpec) => (s.TaskTemplate.PluginSpec as Record<string, unknown>).script;
  test('--plugin-opt-add/-rm, --env-add/-rm, --command/--args, --stop-grace-period edit PluginSpec.<runtime>', () => {
    const s = update(base, '--plugin-opt-add', 'Source=echo bye', '--plugin-opt-add', 'Interpreter=/bin/bash', '--plugin-opt-rm', 'Dir',
      '--env-add', 'A=9', '--env-rm', 'B', '--stop-grace-period', '1s');
    expect(own(s)).toEqual({ Source: 'echo bye', Interpreter: '/bin/bash', Env: ['A=9'], StopGracePeriod: 1e9 });
    expect(own(base)).toEqual({ Source: 'echo hi', Dir: '/tmp', Env: ['A=1', 'B=2'] });
    const w = create('--runtime', 'wasm', '/app.wasm', '-x');
    expect((update(w, '--args', '-y "z z"').TaskTemplate.PluginSpec as any).wasm).toEqual({ Command: ['/app.wasm', '-y', 'z z'] });
    expect((update(w, '--command', '/b.wasm').TaskTemplate.PluginSpec as any).wasm).toEqual({ Command: ['/b.wasm', '-x'] });
  });
  test('removing every field keeps an empty spec (sent, so that the API does not keep the current one)', () => {
    const s = update(base, '--plugin-opt-rm', 'Source', '--plugin-opt-rm', 'Dir', '--env-rm', 'A', '--env-rm', 'B');
    expect(s.TaskTemplate.PluginSpec).toEqual({ script: { Env: [] } });
    expect(update(create('--runtime', 'script', '--plugin-opt', 'Source=x'), '--plugin-opt-rm', 'Source').TaskTemplate.PluginSpec).toEqual({ script: {} });
    expect(update(create('--runtime', 'wasm'), '--replicas', '2').TaskTemplate).toEqual({ Runtime: 'wasm' }); // nothing of its own to change
    expect(update(base, '--replicas', '2').TaskTemplate).toEqual(base.TaskTemplate);
  });
  test('bad values and built-in runtimes are refused', () => {
    expect(() => update(base, '--plugin-opt-add', 'Source')).toThrow('invalid value "Source" for --plugin-opt-add: expected KEY=VALUE');
    expect(() => update(base, '--plugin-opt-add', 'a.b=1')).toThrow('for --plugin-opt-add: KEY is a field name');
    expect(() => update(base, '--plugin-opt-rm', 'Source=x')).toThrow('for --plugin-opt-rm: KEY is a field name');
    expect(() => update(base, '--image', 'x')).toThrow('--image does not apply to --runtime script');
    expect(() => update(create('--runtime', 'wasm'), '--args', 'x')).toThrow('this service has no program: give --command');
    expect(() => update(create('/bin/true'), '--plugin-opt-add', 'A=1')).toThrow('--plugin-opt-add only applies to a plugin\'s runtime (process is built in)');
    expect(() => update(create('--runtime', 'container', 'img'), '--plugin-opt-rm', 'A')).toThrow('--plugin-opt-rm only applies to a plugin\'s runtime (container is built in)');
    expect(() => update(create('--runtime', 'mock'), '--plugin-opt-rm', 'A')).toThrow('(mock is built in)');
  });
});

describe('--isolation (process)', () => {
  test('create and update set, replace and remove ProcessSpec.Isolation; other runtimes and bad names are refused', () => {
    const s = create('--isolation', 'pid,mount', '/bin/true');
    expect(s.TaskTemplate.ProcessSpec!.Isolation).toEqual({ Pid: true, Mount: true });
    expect(update(s, '--isolation', 'network').TaskTemplate.ProcessSpec!.Isolation).toEqual({ Network: true });
    expect(update(s, '--isolation', '').TaskTemplate.ProcessSpec!.Isolation).toBeUndefined();
    expect(update(s, '--env-add', 'A=1').TaskTemplate.ProcessSpec!.Isolation).toEqual({ Pid: true, Mount: true });
    expect(() => create('--isolation', 'pid,user', '/bin/true')).toThrow('"user" is not a namespace: give any of pid, mount, network');
    expect(() => create('--runtime', 'container', '--isolation', 'pid', 'img')).toThrow('--isolation only applies to --runtime process (this service\'s runtime is container)');
  });
});
