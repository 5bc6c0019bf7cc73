/**
 * How the page learns of changes: from GET /events (Docker's JSON-lines stream) while the daemon
 * has it, else by polling. Served by the real API app (over a memory store) behind a test server
 * whose /events the test controls: a stream it writes lines to, or a 404.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Server } from 'bun';
import { proc, type TestApi, testApi } from '../../src/api/test-helper.ts';
import { waitFor } from '../harness/index.ts';
import { againIfBrowserClosed, Browsers, hasBrowser, skipReason } from './browser.ts';

skipReason('test/ui/live.test.ts');

let api: TestApi;
let server: Server<undefined>;
let events: 'stream' | 'missing' = 'stream';
const streams = new Set<ReadableStreamDefaultController<Uint8Array>>();
const browsers = new Browsers();

function emit(e: object): void {
  const line = new TextEncoder().encode(`${JSON.stringify(e)}\n`);
  for (const c of streams) {
    try {
      c.enqueue(line);
    } catch {
      streams.delete(c); // the page that read it is gone
    }
  }
}

beforeAll(async () => {
  if (!hasBrowser) return;
  api = testApi();
  await api.init();
  server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    idleTimeout: 0, // the events stream is quiet between events
    fetch(req) {
      if (new URL(req.url).pathname !== '/events') return api.app.fetch(req);
      if (events === 'missing') return Response.json({ message: 'page not found: GET /events' }, { status: 404 });
      let ctl: ReadableStreamDefaultController<Uint8Array>;
      const body = new ReadableStream<Uint8Array>({ start: (c) => void streams.add((ctl = c)), cancel: () => void streams.delete(ctl) });
      return new Response(body, { headers: { 'content-type': 'application/json' } });
    },
  });
});

afterAll(async () => {
  await browsers[Symbol.asyncDispose]();
  server?.stop(true);
});

describe.skipIf(!hasBrowser)('live updates', () => {
  test('from the events stream: an event line makes the page fetch the cluster again', async () => {
    events = 'stream';
    let n = 0;
    await againIfBrowserClosed(async () => {
      const name = `from-event-${++n}`;
      streams.clear(); // a stream of a page that went away
      const page = await browsers.open(`${server.url}ui/`);
      await waitFor('the page asking for /events', () => streams.size > 0, 10_000);
      // Bun.serve sends a streamed response's headers with its first chunk: the page polls until then.
      emit({ Type: 'node', Action: 'update', Actor: { ID: 'x', Attributes: {} }, time: 1, timeNano: 1e9 });
      await waitFor('the page on the events stream', async () => (await page.locator('#live').getAttribute('data-mode')) === 'events', 10_000);
      const created = await api.call('POST', '/services/create', proc(name));
      expect(created.status).toBe(201);
      emit({ Type: 'service', Action: 'create', Actor: { ID: created.json.ID, Attributes: { name } }, time: 1, timeNano: 1e9 });
      await page.locator(`tr[data-service-name="${name}"]`).waitFor({ timeout: 2_000 });
    });
  }, 60_000);

  test('without GET /events (a 404): polling, and the page says so', async () => {
    events = 'missing';
    const page = await browsers.open(`${server.url}ui/`);
    await waitFor('the page polling', async () => (await page.locator('#live').getAttribute('data-mode')) === 'polling', 10_000);
    expect(await page.locator('#live').textContent()).toContain('no GET /events');
    expect((await api.call('POST', '/services/create', proc('from-poll'))).status).toBe(201);
    await page.locator('tr[data-service-name="from-poll"]').waitFor({ timeout: 2_000 });
    // Secrets and configs the daemon does not have (yet) are "not available", not an error.
    const secrets = await api.call('GET', '/secrets');
    if (secrets.status === 404) expect(await page.locator('#secrets-body').textContent()).toContain('not available');
    expect(await page.locator('#error').isVisible()).toBe(false);
  }, 30_000);
});
