import { expect, test } from 'bun:test';
import { testApi } from './test-helper.ts';

const SCRAPE = { contentType: 'text/plain; version=0.0.4; charset=utf-8', body: '# TYPE x_total counter\nx_total 1\n' };

test('GET /metrics: the daemon\'s text, with its content type, versioned or not', async () => {
  const api = testApi();
  api.deps.metrics = async () => SCRAPE;
  for (const path of ['/metrics', '/v1.47/metrics']) {
    const res = await api.app.request(path);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(SCRAPE.contentType);
    expect(await res.text()).toBe(SCRAPE.body);
  }
});

test('served on a worker (not sent to the managers) and to a read-only client', async () => {
  const api = testApi();
  api.deps.metrics = async () => SCRAPE;
  api.deps.managersIfWorker = () => ['10.0.0.1:4242'];
  expect((await api.app.request('/nodes')).status).toBe(503);
  expect((await api.app.request('/metrics')).status).toBe(200);
  const env = { client: { name: 'prometheus', role: 'read-only' as const, serial: '01' } };
  expect((await api.app.request('/metrics', {}, env)).status).toBe(200);
  expect((await api.app.request('/metrics', { method: 'POST' }, env)).status).toBe(403);
});

test('a daemon without metrics says so', async () => {
  const res = await testApi().app.request('/metrics');
  expect(res.status).toBe(404);
  expect(((await res.json()) as { message: string }).message).toContain('no metrics');
});
