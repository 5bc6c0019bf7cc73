import { describe, expect, test } from 'bun:test';
import { parseArgs, UsageError } from './args.ts';
import { checkConstraint, parseCpus, parseDuration, parseEnv, parsePublish, parseScaleArgs, parseSince, parseSize, splitWords } from './units.ts';

describe('durations', () => {
  test('Go-style values in ns', () => {
    expect(parseDuration('d', '500ms')).toBe(500e6);
    expect(parseDuration('d', '5s')).toBe(5e9);
    expect(parseDuration('d', '1m30s')).toBe(90e9);
    expect(parseDuration('d', '1.5h')).toBe(5400e9);
    expect(parseDuration('d', '250us')).toBe(250e3);
    expect(parseDuration('d', '10ns')).toBe(10);
    expect(parseDuration('d', '0')).toBe(0);
  });
  test('bad values name the flag', () => {
    for (const bad of ['', '5', 'x', '5x', '-1s', '1s2', 's', '1 s']) {
      expect(() => parseDuration('restart-delay', bad)).toThrow(`invalid value "${bad}" for --restart-delay: expected a duration`);
    }
    expect(() => parseDuration('d', '99999999h')).toThrow('too long');
  });
});

describe('sizes and cpus', () => {
  test('binary multiples, case-insensitive, optional b/ib', () => {
    expect(parseSize('m', '64M')).toBe(64 * 1024 ** 2);
    expect(parseSize('m', '1G')).toBe(1024 ** 3);
    expect(parseSize('m', '512k')).toBe(512 * 1024);
    expect(parseSize('m', '100')).toBe(100);
    expect(parseSize('m', '64MiB')).toBe(64 * 1024 ** 2);
    expect(parseSize('m', '1.5g')).toBe(1.5 * 1024 ** 3);
    for (const bad of ['', 'M', '64X', '-1M', '1 2']) expect(() => parseSize('limit-memory', bad)).toThrow(`for --limit-memory`);
  });
  test('cpus', () => {
    expect(parseCpus('c', '0.5')).toBe(5e8);
    expect(parseCpus('c', '2')).toBe(2e9);
    for (const bad of ['0', 'x', '-1', '']) expect(() => parseCpus('reserve-cpu', bad)).toThrow('--reserve-cpu');
  });
});

describe('publish', () => {
  test('short form', () => {
    expect(parsePublish('8080:80')).toEqual({ Protocol: 'tcp', PublishedPort: 8080, TargetPort: 80, PublishMode: 'ingress' });
    expect(parsePublish('53:53/udp')).toMatchObject({ Protocol: 'udp', PublishedPort: 53, TargetPort: 53 });
    expect(parsePublish('80')).toEqual({ Protocol: 'tcp', TargetPort: 80, PublishMode: 'ingress' });
  });
  test('long form', () => {
    expect(parsePublish('published=8080,target=80,protocol=udp,mode=host')).toEqual({ Protocol: 'udp', PublishedPort: 8080, TargetPort: 80, PublishMode: 'host' });
    expect(parsePublish('target=80')).toMatchObject({ TargetPort: 80 });
  });
  test('errors', () => {
    for (const bad of ['x', '80:', '70000:80', '80:0', 'published=80', 'target=80,colour=red', 'target=80,protocol=sctp', '8080:80/icmp']) {
      expect(() => parsePublish(bad)).toThrow(`invalid value "${bad}" for --publish`);
    }
  });
});

describe('misc values', () => {
  test('constraints are checked with the scheduler parser', () => {
    expect(checkConstraint('constraint', 'node.labels.zone==eu')).toBe('node.labels.zone==eu');
    expect(() => checkConstraint('constraint', 'node.role=manager')).toThrow('invalid value "node.role=manager" for --constraint: expected an operator');
    expect(() => checkConstraint('constraint', 'colour==red')).toThrow('unknown key');
  });
  test('scale arguments', () => {
    expect(parseScaleArgs(['web=5', 'db=0'])).toEqual([['web', 5], ['db', 0]]);
    expect(() => parseScaleArgs([])).toThrow('SERVICE=REPLICAS');
    expect(() => parseScaleArgs(['web'])).toThrow('invalid scale specifier "web"');
    expect(() => parseScaleArgs(['web=-1'])).toThrow('invalid replicas value "-1"');
    expect(() => parseScaleArgs(['web=x'])).toThrow('for web');
  });
  test('env from the shell when no value', () => {
    expect(parseEnv('env', 'A=1')).toBe('A=1');
    expect(parseEnv('env', 'HOME_X', { HOME_X: '/h' })).toBe('HOME_X=/h');
    expect(parseEnv('env', 'UNSET', {})).toBeNull();
    expect(() => parseEnv('env', '=x')).toThrow('--env');
  });
  test('since: durations ago, times, unix seconds', () => {
    expect(parseSince('1m', 120_000)).toBe('60.000');
    expect(parseSince('1700000000')).toBe('1700000000');
    expect(parseSince('2024-01-01T00:00:00Z')).toBe('1704067200.000');
    expect(() => parseSince('yesterday')).toThrow('--since');
  });
  test('splitWords', () => {
    expect(splitWords('args', `a "b c" 'd e' f\\ g ""`)).toEqual(['a', 'b c', 'd e', 'f g', '']);
    expect(() => splitWords('args', '"open')).toThrow('unterminated');
  });
});

describe('parseArgs', () => {
  const defs = [
    { long: 'name', kind: 'string', help: '' },
    { long: 'env', short: 'e', kind: 'list', help: '' },
    { long: 'detach', short: 'd', kind: 'bool', help: '' },
    { long: 'quiet', short: 'q', kind: 'bool', help: '' },
  ] as const;
  test('long, =, short, clustered, repeatable', () => {
    const p = parseArgs(['--name', 'web', '-e', 'A=1', '-eB=2', '--env=C=3', '-dq', 'x'], [...defs]);
    expect(p.str('name')).toBe('web');
    expect(p.list('env')).toEqual(['A=1', 'B=2', 'C=3']);
    expect(p.bool('detach') && p.bool('quiet')).toBe(true);
    expect(p.positionals).toEqual(['x']);
  });
  test('stopAtPositional: the program keeps its own flags', () => {
    const p = parseArgs(['-d', '/bin/sh', '-c', 'echo --name', '--name', 'x'], [...defs], { stopAtPositional: true });
    expect(p.positionals).toEqual(['/bin/sh', '-c', 'echo --name', '--name', 'x']);
    expect(p.has('name')).toBe(false);
    expect(parseArgs(['--', '-x'], [...defs]).positionals).toEqual(['-x']);
  });
  test('errors', () => {
    expect(() => parseArgs(['--nope'], [...defs])).toThrow(new UsageError('unknown flag: --nope'));
    expect(() => parseArgs(['-x'], [...defs])).toThrow('unknown shorthand flag');
    expect(() => parseArgs(['--name'], [...defs])).toThrow('flag needs an argument: --name');
    expect(() => parseArgs(['--detach=maybe'], [...defs])).toThrow('--detach');
  });
});
