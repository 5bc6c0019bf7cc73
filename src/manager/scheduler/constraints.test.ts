import { describe, expect, test } from 'bun:test';
import { InvalidArgumentError } from '../../lib/errors.ts';
import { makeNode } from '../testkit.ts';
import { matchConstraints, nodeSatisfies, parseConstraint, parseConstraints } from './constraints.ts';

describe('constraints', () => {
  test('parses each key with == and !=', () => {
    expect(parseConstraint('node.role == manager')).toEqual({ raw: 'node.role == manager', key: 'node.role', op: '==', value: 'manager' });
    expect(parseConstraint('node.labels.Zone!=eu')).toMatchObject({ key: 'node.labels.Zone', op: '!=', value: 'eu' });
    for (const k of ['node.id', 'node.hostname', 'node.platform.os', 'node.platform.arch', 'engine.labels.x', 'NODE.ROLE'])
      expect(() => parseConstraint(`${k}==a`)).not.toThrow();
  });

  test('errors name the bad constraint and are InvalidArgumentError (400)', () => {
    const cases: [string, RegExp][] = [
      ['node.role=manager', /expected an operator/],
      ['==manager', /missing key/],
      ['node.role==', /missing value/],
      ['node.colour==red', /unknown key "node.colour"/],
      ['node.labels.==x', /missing label name/],
      ['node.role==a==b', /more than one operator/],
    ];
    for (const [raw, why] of cases) {
      let err: unknown;
      try {
        parseConstraints(['node.role==worker', raw]);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).status).toBe(400);
      expect((err as Error).message).toContain(`"${raw}"`);
      expect((err as Error).message).toMatch(why);
    }
  });

  test('matches node fields; values ignore case; != holds when a label is absent', () => {
    const n = makeNode({ id: 'n1', hostname: 'alpha', role: 'manager', labels: { zone: 'EU-1' }, os: 'linux', arch: 'aarch64' });
    const m = (...cs: string[]) => matchConstraints(parseConstraints(cs), n);
    expect(m('node.id==n1', 'node.hostname==alpha', 'node.role==manager')).toBe(true);
    expect(m('node.platform.os==linux', 'node.platform.arch==aarch64')).toBe(true);
    expect(m('node.labels.zone==eu-1')).toBe(true);
    expect(m('node.labels.zone!=eu-1')).toBe(false);
    expect(m('node.labels.rack!=r1')).toBe(true);
    expect(m('node.labels.rack==r1')).toBe(false);
    expect(m('node.role!=manager')).toBe(false);
    expect(nodeSatisfies(['bogus'], n)).toBe(false);
    expect(nodeSatisfies([], n)).toBe(true);
  });
});
