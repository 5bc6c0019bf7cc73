import { describe, expect, test } from 'bun:test';
import { parseArgs } from './args.ts';
import { applyServiceUpdate, buildServiceSpec, CREATE_OPTIONS, UPDATE_OPTIONS } from './service-opts.ts';

const create = (...argv: string[]) => buildServiceSpec(parseArgs(argv, CREATE_OPTIONS, { stopAtPositional: true }), {});
const update = (spec: any, ...argv: string[]) => applyServiceUpdate(spec, parseArgs(argv, UPDATE_OPTIONS), {});

describe('--update-* and --rollback-*', () => {
  test('create: every flag, as docker names them', () => {
    const spec = create(
      '--update-parallelism', '2', '--update-delay', '1s', '--update-failure-action', 'rollback', '--update-monitor', '3s',
      '--update-max-failure-ratio', '0.25', '--update-order', 'start-first',
      '--rollback-parallelism', '0', '--rollback-failure-action', 'continue', '--rollback-monitor', '0', '--rollback-order', 'stop-first',
      '/bin/true',
    );
    expect(spec.UpdateConfig).toEqual({ Parallelism: 2, Delay: 1e9, FailureAction: 'rollback', Monitor: 3e9, MaxFailureRatio: 0.25, Order: 'start-first' });
    expect(spec.RollbackConfig).toEqual({ Parallelism: 0, FailureAction: 'continue', Monitor: 0, Order: 'stop-first' });
    expect(create('/bin/true').UpdateConfig).toBeUndefined();
  });

  test('update: a flag changes its field and keeps the others', () => {
    const cur = create('--update-parallelism', '2', '--update-order', 'start-first', '/bin/true');
    expect(update(cur, '--update-delay', '2s').UpdateConfig).toEqual({ Parallelism: 2, Order: 'start-first', Delay: 2e9 });
  });

  test('bad values name the flag', () => {
    expect(() => create('--update-parallelism', '-1', '/bin/true')).toThrow('--update-parallelism');
    expect(() => create('--update-max-failure-ratio', '1.5', '/bin/true')).toThrow('invalid value "1.5" for --update-max-failure-ratio: expected a number from 0 to 1');
    expect(() => create('--update-failure-action', 'explode', '/bin/true')).toThrow('--update-failure-action: expected one of pause, continue, rollback');
    expect(() => create('--rollback-failure-action', 'rollback', '/bin/true')).toThrow('--rollback-failure-action: expected one of pause, continue');
    expect(() => create('--update-order', 'sideways', '/bin/true')).toThrow('--update-order');
  });
});

describe('health flags on a process', () => {
  test('create and update set ProcessSpec.Healthcheck; mock refuses them', () => {
    const spec = create('--health-cmd', 'curl -f localhost', '--health-interval', '1s', '--health-retries', '2', '/bin/server');
    expect(spec.TaskTemplate.ProcessSpec!.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'curl -f localhost'], Interval: 1e9, Retries: 2 });
    expect(update(spec, '--health-timeout', '500ms').TaskTemplate.ProcessSpec!.Healthcheck).toMatchObject({ Timeout: 5e8, Retries: 2 });
    expect(update(spec, '--health-cmd', '').TaskTemplate.ProcessSpec!.Healthcheck).toEqual({ Interval: 1e9, Retries: 2 });
    expect(() => create('--runtime', 'mock', '--health-cmd', 'true')).toThrow('--health-cmd only applies to --runtime container, process or vm');
  });
});
