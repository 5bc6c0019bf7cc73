import { expect, test } from 'bun:test';
import { memoryStore } from '../store/index.ts';
import { managerMetricsRegistry, metricsRegistry, storeWrites } from './metrics.ts';

async function written(result: string): Promise<number> {
  return (await storeWrites.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
}

test('store writes are counted by result', async () => {
  const store = memoryStore();
  const ok = await written('ok');
  const conflict = await written('conflict');
  await store.update((tx) => tx.create('clusters', { ID: 'c1', Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: { Name: 'default' }, JoinTokens: { Worker: 'w', Manager: 'm' } } as never));
  await expect(store.update((tx) => tx.create('clusters', { ID: 'c1', Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: { Name: 'default' }, JoinTokens: { Worker: 'w', Manager: 'm' } } as never))).rejects.toThrow();
  expect(await written('ok')).toBe(ok + 1);
  expect(await written('conflict')).toBe(conflict + 1);
});

test('names follow the Prometheus conventions: shoal_ prefix, _total counters, _seconds durations', async () => {
  for (const m of [...await metricsRegistry.getMetricsAsJSON(), ...await managerMetricsRegistry.getMetricsAsJSON()]) {
    if (/^(process|nodejs)_/.test(m.name)) continue; // prom-client's process metrics, once a daemon started them
    expect(m.name).toStartWith('shoal_');
    if (String(m.type) === 'counter') expect(m.name).toEndWith('_total');
    if (String(m.type) === 'histogram') expect(m.name).toEndWith('_seconds');
  }
});
