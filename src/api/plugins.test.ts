import { expect, test } from 'bun:test';
import { testApi } from './test-helper.ts';

test('GET /plugins lists loaded and failed plugins, before a cluster exists too', async () => {
  const api = testApi();
  expect((await api.call('GET', '/plugins')).json).toEqual([]);
  api.deps.plugins = () => ({
    dir: '/var/lib/shoal/plugins',
    plugins: [
      { file: '/var/lib/shoal/plugins/script.ts', runtime: 'script' },
      { file: '/var/lib/shoal/plugins/broken.js', error: 'no license key' },
    ],
  });
  const { createApp } = await import('./app.ts');
  const res = await createApp(api.deps).request('/v1.47/plugins');
  expect(res.status).toBe(200);
  expect(res.headers.get('Shoal-Plugin-Dir')).toBe('/var/lib/shoal/plugins');
  const body = await res.json() as any[];
  expect(body.map((p) => [p.Name, p.Enabled, p.Runtime, p.Error])).toEqual([
    ['script', true, 'script', undefined],
    ['broken', false, undefined, 'no license key'],
  ]);
  expect(body[0].Id).toMatch(/^[0-9a-f]{64}$/);
  expect(body[1].Config.Description).toBe('not loaded: no license key');
});
