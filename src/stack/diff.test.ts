import { describe, expect, test } from 'bun:test';
import type { ServiceSpec } from '../types/index.ts';
import type { StackPlan } from './convert.ts';
import { type Current, diffStack, SPEC_LABEL, specDigest, withDigest } from './diff.ts';

const spec = (name: string, image = 'busybox'): ServiceSpec => ({ Name: `s_${name}`, Labels: { 'com.docker.stack.namespace': 's' }, TaskTemplate: { ContainerSpec: { Image: image } } });
const plan = (services: ServiceSpec[]): StackPlan => ({
  namespace: 's',
  networks: [{ Name: 's_default', Driver: 'overlay', Labels: {}, Attachable: false, Internal: false, IPAM: { Config: [] } }],
  secrets: [{ Name: 's_pw', Labels: { 'io.shoal.stack.digest': 'aaa' }, Data: '' }],
  configs: [],
  services,
  external: { networks: [], secrets: [], configs: [] },
});
const deployed = (specs: ServiceSpec[]): Current => ({
  services: specs.map((s, i) => ({ ID: `id${i}`, Version: { Index: 10 + i }, Spec: withDigest(s) })),
  networks: [{ Id: 'n1', Name: 's_default' }],
  secrets: [{ ID: 'x', Spec: { Name: 's_pw', Labels: { 'io.shoal.stack.digest': 'aaa' } } }],
  configs: [],
});
const empty: Current = { services: [], networks: [], secrets: [], configs: [] };

describe('diffStack', () => {
  test('a first deploy creates everything, secrets and networks before services', () => {
    expect(diffStack(plan([spec('a')]), empty, false).map((a) => a.op)).toEqual(['create-secret', 'create-network', 'create-service']);
  });

  test('a redeploy with one change updates that service only, at its version', () => {
    const before = [spec('a'), spec('b')];
    const actions = diffStack(plan([spec('a'), spec('b', 'busybox:2')]), deployed(before), false);
    expect(actions).toHaveLength(1);
    expect(actions[0]).toMatchObject({ op: 'update-service', id: 'id1', version: 11 });
    expect(diffStack(plan(before), deployed(before), false)).toEqual([]);
  });

  test('key order is no change; the label holds the hash of the spec without itself', () => {
    const a = spec('a');
    const reordered: ServiceSpec = { TaskTemplate: a.TaskTemplate, Labels: a.Labels, Name: a.Name };
    expect(specDigest(reordered)).toBe(specDigest(a));
    expect(withDigest(a).Labels![SPEC_LABEL]).toBe(specDigest(withDigest(a)));
  });

  test('--prune removes services no longer named; without it they stay', () => {
    const cur = deployed([spec('a'), spec('old')]);
    expect(diffStack(plan([spec('a')]), cur, false)).toEqual([]);
    expect(diffStack(plan([spec('a')]), cur, true)).toEqual([{ op: 'remove-service', id: 'id1', name: 's_old' }]);
  });

  test('a secret whose content changed is refused, naming it', () => {
    const cur = deployed([]);
    cur.secrets[0]!.Spec.Labels = { 'io.shoal.stack.digest': 'bbb' };
    expect(() => diffStack(plan([]), cur, false)).toThrow('secret s_pw exists with other content');
  });
});
