import { expect, test } from 'bun:test';
import { createMockExecutor } from '../../plugins/mock/index.ts';
import { builtinCatalog, ExecutorCatalog } from './catalog.ts';
import type { Executor } from './contract.ts';
import { UnknownRuntimeError } from './errors.ts';

test('built-ins are container, mock, process and vm; unknown runtimes are named', () => {
  const c = builtinCatalog();
  expect(c.names()).toEqual(['container', 'mock', 'process', 'vm']);
  expect(c.get('process').name).toBe('process');
  expect(() => c.get('wasm')).toThrow(UnknownRuntimeError);
  expect(() => c.get('wasm')).toThrow('unknown runtime "wasm" (this node has: container, mock, process, vm)');
});

test('a runtime this host cannot run is registered but unhealthy, with the reason', async () => {
  const saved = { DOCKER_HOST: process.env.DOCKER_HOST, PATH: process.env.PATH };
  process.env.DOCKER_HOST = 'unix:///nonexistent/docker.sock';
  process.env.PATH = '/nonexistent';
  try {
    const c = builtinCatalog();
    const fps = await c.fingerprints();
    expect(fps.get('container')!.healthy).toBe(false);
    expect(fps.get('container')!.message).toContain('Docker Engine at unix:///nonexistent/docker.sock not reachable');
    expect(fps.get('vm')!.healthy).toBe(false);
    expect(fps.get('vm')!.message).toContain('qemu-system-x86_64 not found');
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  }
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
  expect(c.validate({ Runtime: 'vm' })).toContain('TaskTemplate.VMSpec: required');
  expect(c.validate({ Runtime: 'container', ContainerSpec: { Image: '' } })).toContain('ContainerSpec.Image');
  expect(c.validate({ Runtime: 'wasm' })).toContain('TaskTemplate.Runtime: unknown runtime "wasm"');
  expect(c.validate({ Runtime: 'wasm' }, { allowUnknownRuntime: true })).toBeNull();
});
