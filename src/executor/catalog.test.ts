import { expect, test } from 'bun:test';
import { createMockExecutor } from '../../plugins/mock/index.ts';
import { builtinCatalog, ExecutorCatalog } from './catalog.ts';
import type { Executor } from './contract.ts';
import { UnknownRuntimeError } from './errors.ts';

test('built-ins are process and mock; unknown runtimes are named', () => {
  const c = builtinCatalog();
  expect(c.names()).toEqual(['mock', 'process']);
  expect(c.get('process').name).toBe('process');
  expect(() => c.get('vm')).toThrow(UnknownRuntimeError);
  expect(() => c.get('vm')).toThrow('unknown runtime "vm" (this node has: mock, process)');
});

test('register refuses duplicates and bad names', () => {
  const c = new ExecutorCatalog([createMockExecutor()]);
  expect(() => c.register(createMockExecutor())).toThrow('already registered');
  expect(() => c.register({ ...createMockExecutor(), name: 'Bad Name' })).toThrow('executor name "Bad Name"');
});

test('fingerprintAll reports health; a throwing or hanging executor is unhealthy, not fatal', async () => {
  const c = new ExecutorCatalog([createMockExecutor()]);
  const broken: Executor = { ...createMockExecutor(), name: 'broken', fingerprint: async () => { throw new Error('no kvm'); } };
  const hanging: Executor = {
    ...createMockExecutor(), name: 'hanging',
    fingerprint: (signal) => new Promise((_, reject) => signal?.addEventListener('abort', () => reject(new Error('aborted')))),
  };
  c.register(broken);
  c.register(hanging);
  const ac = new AbortController();
  const p = c.fingerprintAll(ac.signal);
  ac.abort();
  expect(await p).toEqual([
    { Name: 'broken', Healthy: false, Message: 'fingerprint failed: no kvm' },
    { Name: 'hanging', Healthy: false, Message: 'fingerprint failed: aborted' },
    { Name: 'mock', Healthy: true },
  ]);
});

test('validate picks the executor from the runtime and names unknown runtimes', () => {
  const c = builtinCatalog();
  expect(c.validate({ Runtime: 'process', ProcessSpec: { Command: ['true'] } })).toBeNull();
  expect(c.validate({ ProcessSpec: { Command: [] } })).toContain('ProcessSpec.Command'); // default runtime: process
  expect(c.validate({ Runtime: 'vm' })).toContain('TaskTemplate.Runtime: unknown runtime "vm"');
  expect(c.validate({ Runtime: 'vm' }, { allowUnknownRuntime: true })).toBeNull();
});
