import { expect, test } from 'bun:test';
import { testApi } from './test-helper.ts';

test('GET / and /ui redirect to /ui/', async () => {
  const { app } = testApi();
  for (const p of ['/', '/ui']) {
    const r = await app.request(p);
    expect(r.status).toBe(302);
    expect(r.headers.get('location')).toBe('/ui/');
  }
});

test('the page and its script are served from the binary, under a same-origin-only policy', async () => {
  const { app } = testApi();
  const page = await app.request('/ui/');
  expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
  expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
  const html = await page.text();
  expect(html).toContain('<script type="module" src="/ui/app.js"></script>');
  expect(html).not.toMatch(/https?:\/\//); // nothing from a CDN
  const js = await app.request('/ui/app.js');
  expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
  const code = await js.text();
  expect(code).toContain('/events'); // the bundle, not a placeholder
  expect(code).not.toMatch(/\bimport\s*[{("']/); // bundled: no module for the browser to fetch
});

test('a read-only client bundle may load the UI (its actions get the API 403)', async () => {
  const { app } = testApi();
  const env = { client: { name: 'bob', role: 'read-only' as const, serial: '01' } };
  expect((await app.request('/ui/', {}, env)).status).toBe(200);
  expect((await app.request('/services/create', { method: 'POST', body: '{}' }, env)).status).toBe(403);
});
