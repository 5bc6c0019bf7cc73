import { describe, expect, test } from 'bun:test';
import { parseArgs } from './args.ts';
import { applyNodeUpdate } from './node.ts';
import { applyServiceUpdate, buildServiceSpec, CREATE_OPTIONS, UPDATE_OPTIONS } from './service-opts.ts';

const create = (...argv: string[]) => buildServiceSpec(parseArgs(argv, CREATE_OPTIONS, { stopAtPositional: true }), { FROM_SHELL: 'yes' });
const update = (spec: any, ...argv: string[]) => applyServiceUpdate(spec, parseArgs(argv, UPDATE_OPTIONS), {});

describe('service create → ServiceSpec', () => {
  test('a process with every option', () => {
    const spec = create(
      '--name', 'web', '--replicas', '3', '-e', 'A=1', '--env', 'FROM_SHELL', '--env', 'NOT_SET', '-w', '/srv', '-u', 'nobody',
      '--constraint', 'node.role==manager', '--label', 'tier=front', '--reserve-cpu', '0.5', '--reserve-memory', '64M',
      '--limit-cpu', '1', '--limit-memory', '1G', '--restart-condition', 'on-failure', '--restart-delay', '500ms',
      '--restart-max-attempts', '3', '--restart-window', '1m', '--stop-grace-period', '2s', '-p', '8080:80',
      '/bin/sh', '-c', 'echo hi', '--name', 'not-ours',
    );
    expect(spec).toEqual({
      Name: 'web',
      Labels: { tier: 'front' },
      TaskTemplate: {
        Runtime: 'process',
        ProcessSpec: { Command: ['/bin/sh', '-c', 'echo hi', '--name', 'not-ours'], Env: ['A=1', 'FROM_SHELL=yes'], Dir: '/srv', User: 'nobody', StopGracePeriod: 2e9 },
        Resources: { Limits: { NanoCPUs: 1e9, MemoryBytes: 1024 ** 3 }, Reservations: { NanoCPUs: 5e8, MemoryBytes: 64 * 1024 ** 2 } },
        RestartPolicy: { Condition: 'on-failure', Delay: 5e8, MaxAttempts: 3, Window: 60e9 },
        Placement: { Constraints: ['node.role==manager'] },
      },
      Mode: { Replicated: { Replicas: 3 } },
      EndpointSpec: { Mode: 'vip', Ports: [{ Protocol: 'tcp', PublishedPort: 8080, TargetPort: 80, PublishMode: 'ingress' }] },
    });
  });

  test('mock, container, global; defaults', () => {
    expect(create('--runtime', 'mock', '--mock-run-for', '1s', '--mock-exit-code', '3', '--mock-start-error', 'boom').TaskTemplate).toEqual({
      Runtime: 'mock', MockSpec: { RunFor: 1e9, ExitCode: 3, StartError: 'boom' },
    });
    expect(create('--runtime', 'container', 'nginx:1', 'nginx', '-g', 'daemon off;').TaskTemplate.ContainerSpec).toEqual({ Image: 'nginx:1', Args: ['nginx', '-g', 'daemon off;'] });
    const g = create('--mode', 'global', '/bin/true');
    expect(g.Mode).toEqual({ Global: {} });
    expect(g.Name).toBeUndefined();
    expect(create('/bin/true').Mode).toEqual({ Replicated: { Replicas: 1 } });
  });

  test('mistakes name the flag', () => {
    expect(() => create('--replicas', 'many', '/bin/true')).toThrow('invalid value "many" for --replicas');
    expect(() => create('--replicas', '-1', '/bin/true')).toThrow('--replicas');
    expect(() => create('--mode', 'both', '/bin/true')).toThrow('invalid value "both" for --mode');
    expect(() => create('--mode', 'global', '--replicas', '2', '/bin/true')).toThrow('--replicas cannot be used with --mode global');
    expect(() => create()).toThrow('needs a PROGRAM');
    expect(() => create('--runtime', 'mock', '/bin/true')).toThrow('runs no program');
    expect(() => create('--runtime', 'container')).toThrow('needs an IMAGE');
    expect(() => create('--mock-run-for', '1s', '/bin/true')).toThrow('--mock-run-for only applies to --runtime mock');
    expect(() => create('--restart-condition', 'sometimes', '/bin/true')).toThrow('--restart-condition');
    expect(() => create('--runtime', 'Bad Name', '/bin/true')).toThrow('--runtime');
    expect(() => create('--label', '=x', '/bin/true')).toThrow('--label');
    expect(() => create('--runtime', 'mock', '-e', 'A=1')).toThrow('--env does not apply to --runtime mock');
  });
});

describe('service update', () => {
  const base = create('--name', 'web', '-e', 'A=1', '-e', 'B=2', '--label', 'x=1', '--constraint', 'node.role==manager', '/bin/sleep', '60');
  test('replicas, env add/rm, args, command, force, labels, constraints', () => {
    const s = update(base, '--replicas', '4', '--env-add', 'A=9', '--env-rm', 'B', '--args', '120 "two words"', '--force', '--label-add', 'y=2', '--label-rm', 'x', '--constraint-rm', 'node.role==manager', '--constraint-add', 'node.labels.z==1');
    expect(s.Mode).toEqual({ Replicated: { Replicas: 4 } });
    expect(s.TaskTemplate.ProcessSpec).toMatchObject({ Command: ['/bin/sleep', '120', 'two words'], Env: ['A=9'] });
    expect(s.TaskTemplate.ForceUpdate).toBe(1);
    expect(s.Labels).toEqual({ y: '2' });
    expect(s.TaskTemplate.Placement?.Constraints).toEqual(['node.labels.z==1']);
    expect(base.Mode).toEqual({ Replicated: { Replicas: 1 } }); // not mutated
    expect(update(base, '--command', '/bin/cat').TaskTemplate.ProcessSpec?.Command).toEqual(['/bin/cat', '60']);
    expect(update(base, '--restart-delay', '1s').TaskTemplate.RestartPolicy).toEqual({ Delay: 1e9 });
  });
  test('container image; refusals', () => {
    const c = create('--runtime', 'container', 'nginx:1');
    expect(update(c, '--image', 'nginx:2', '--args', 'a b').TaskTemplate.ContainerSpec).toEqual({ Image: 'nginx:2', Args: ['a', 'b'] });
    expect(() => update(base, '--image', 'x')).toThrow('--image only applies');
    expect(() => update(create('--mode', 'global', '/bin/true'), '--replicas', '2')).toThrow('global');
    expect(() => update(create('--runtime', 'mock'), '--env-add', 'A=1')).toThrow('--env-add does not apply');
  });
});

describe('node update', () => {
  const spec = { Role: 'manager', Availability: 'active', Labels: { a: '1' } } as const;
  const run = (...argv: string[]) =>
    applyNodeUpdate({ ...spec, Labels: { ...spec.Labels } }, parseArgs(argv, [
      { long: 'availability', kind: 'string', help: '' }, { long: 'role', kind: 'string', help: '' },
      { long: 'label-add', kind: 'list', help: '' }, { long: 'label-rm', kind: 'list', help: '' },
    ]));
  test('availability, labels, role', () => {
    expect(run('--availability', 'drain', '--label-add', 'zone=mars', '--label-rm', 'a')).toEqual({ Role: 'manager', Availability: 'drain', Labels: { zone: 'mars' } });
    expect(run('--role', 'worker').Role).toBe('worker');
    expect(() => run('--availability', 'off')).toThrow('invalid value "off" for --availability');
    expect(() => run('--label-rm', 'nope')).toThrow('nope');
  });
});
