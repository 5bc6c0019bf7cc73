/**
 * The web UI in a real headless browser (Debian's chromium driven by playwright-core), over the real
 * path a user takes: `shoal daemon --listen-tcp`, mutual TLS, the browser presenting a client bundle
 * from `shoal ca client-bundle`. The API calls that set things up and check results go through the
 * unix socket. Skipped when /usr/bin/chromium is missing, unless SHOAL_REQUIRE_BROWSER=1 (.ci/run
 * sets it when it could install chromium).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { type Daemon, tlsDaemon, waitFor } from '../harness/index.ts';
import { Browsers, hasBrowser, skipReason } from './browser.ts';

skipReason('test/ui/ui.test.ts');

/** The bound: a service created through the API shows in the UI within 2 s. */
const SHOWS_WITHIN_MS = 2_000;

let d: Daemon & AsyncDisposable;
let dir: string;
let origin: string;
const browsers = new Browsers();

/** A browser presenting the client bundle in `bundle` to the TCP API. */
function browserWith(bundle: string): Promise<Page> {
  return browsers.open(`${origin}/`, {
    // The server's certificate is from the cluster's own CA, which a fresh profile does not trust.
    ignoreHTTPSErrors: true,
    clientCertificates: [{ origin, certPath: join(dir, bundle, 'cert.pem'), keyPath: join(dir, bundle, 'key.pem') }],
  });
}

async function service(name: string): Promise<any> {
  return d.json(`/services/${name}`);
}

beforeAll(async () => {
  if (!hasBrowser) return;
  dir = mkdtempSync(join(tmpdir(), 'shoal-ui-'));
  const started = await tlsDaemon(dir);
  d = started.d;
  origin = `https://127.0.0.1:${started.tcp}`;
}, 60_000);

afterAll(async () => {
  await browsers[Symbol.asyncDispose]();
  await d?.[Symbol.asyncDispose]();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!hasBrowser)('the web UI', () => {
  test('is served over mutual TLS only: with a bundle, not without', async () => {
    const tls = { ca: readFileSync(join(dir, 'alice', 'ca.pem'), 'utf8'), cert: readFileSync(join(dir, 'alice', 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'alice', 'key.pem'), 'utf8') };
    const page = await fetch(`${origin}/ui/`, { tls } as RequestInit);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<script type="module" src="/ui/app.js">');
    const js = await fetch(`${origin}/ui/app.js`, { tls } as RequestInit);
    expect(js.headers.get('content-type')).toContain('javascript');
    await expect(fetch(`${origin}/ui/`, { tls: { ca: tls.ca } } as RequestInit)).rejects.toThrow();
    // And on the socket, where the CLI talks.
    // (manual: Bun's fetch would follow the redirect over TCP, not over the socket)
    expect((await d.api('/', { redirect: 'manual' })).headers.get('location')).toBe('/ui/');
    expect(await (await d.api('/ui/')).text()).toContain('/ui/app.js');
  });

  test('loads; shows a service created through the API; scale, rollback, logs, drain from the UI', async () => {
    const page = await browserWith('alice');
    await page.locator('#raft-summary').waitFor({ timeout: 10_000 });
    expect(await page.locator('#raft-summary').textContent()).toContain('healthy');
    const raft = await d.json('/raft');
    expect(raft.Term).toBeGreaterThan(0);
    await waitFor('the Raft numbers shown', async () => /term \d+ · commit \d+ · applied \d+/.test((await page.locator('#raft-numbers').textContent()) ?? ''), 10_000);
    // Secrets and configs: a list when the daemon has them, "not available" when it answers 404.
    expect(await page.locator('#secrets-body').textContent()).toMatch(/not available|no secrets|name/);

    await d.json('/services/create', { method: 'POST', body: JSON.stringify({ Name: 'web', TaskTemplate: { Runtime: 'process', ProcessSpec: { Command: ['/bin/sh', '-c', 'echo hello-from-web; exec sleep 600'] } }, Mode: { Replicated: { Replicas: 1 } } }) });
    const row = page.locator('tr[data-service-name="web"]');
    await row.waitFor({ timeout: SHOWS_WITHIN_MS });

    await row.locator('button.open').click();
    await page.locator('#scale-replicas').fill('3');
    await page.locator('#scale').click();
    await waitFor('replicas 3 through the API', async () => (await service('web')).Spec.Mode.Replicated.Replicas === 3, 10_000);
    await waitFor('the UI showing 3 replicas', async () => /\/3$/.test((await row.locator('td.replicas').textContent()) ?? ''), 10_000);

    await page.locator('#rollback').click();
    await waitFor('the rollback through the API', async () => {
      const s = await service('web');
      return s.Spec.Mode.Replicated.Replicas === 1 && s.UpdateStatus?.State?.startsWith('rollback');
    }, 10_000);
    await waitFor('the rollback shown', async () => ((await page.locator('#update-status').textContent()) ?? '').includes('rollback'), 10_000);

    await waitFor('a running task', async () => (await d.running('web')).length > 0, 20_000);
    await page.locator('#show-logs').click();
    await waitFor('the log line in the UI', async () => {
      // Not following: the view holds what the tasks had written; ask again until the line is there.
      const text = (await page.locator('#logs').textContent()) ?? '';
      if (!text.includes('hello-from-web')) await page.locator('#show-logs').click();
      return text.includes('hello-from-web');
    }, 15_000, 250);
    // Followed: a stream through the TLS listener, read as it comes.
    await page.locator('#logs-follow').check();
    await page.locator('#show-logs').click();
    await waitFor('the followed log line', async () => ((await page.locator('#logs').textContent()) ?? '').includes('hello-from-web'), 15_000);

    // A container service's image; no replicas, so nothing needs pulling.
    await d.json('/services/create', { method: 'POST', body: JSON.stringify({ Name: 'box', TaskTemplate: { ContainerSpec: { Image: 'shoal-test/busybox:latest' } }, Mode: { Replicated: { Replicas: 0 } } }) });
    const box = page.locator('tr[data-service-name="box"]');
    await box.waitFor({ timeout: SHOWS_WITHIN_MS });
    await box.locator('button.open').click();
    await page.locator('#image').fill('shoal-test/busybox:v2');
    await page.locator('#update-image').click();
    await waitFor('the new image through the API', async () => (await service('box')).Spec.TaskTemplate.ContainerSpec.Image === 'shoal-test/busybox:v2', 10_000);

    const self = (await d.json('/info')).Swarm.NodeID;
    await page.locator(`tr[data-node-id="${self}"] button.drain`).click();
    await waitFor('the node drained through the API', async () => (await d.json(`/nodes/${self}`)).Spec.Availability === 'drain', 10_000);
    await page.locator(`tr[data-node-id="${self}"] button.activate`).click();
    await waitFor('the node active again', async () => (await d.json(`/nodes/${self}`)).Spec.Availability === 'active', 10_000);
    expect(await page.locator('#error').isVisible()).toBe(false);
  }, 90_000);

  test('a read-only bundle sees everything; its actions show the API\'s 403', async () => {
    const page = await browserWith('bob');
    const row = page.locator('tr[data-service-name="web"]');
    await row.waitFor({ timeout: 10_000 });
    await row.locator('button.open').click();
    await page.locator('#scale-replicas').fill('5');
    await page.locator('#scale').click();
    await page.locator('#error').waitFor({ state: 'visible', timeout: 10_000 });
    expect(await page.locator('#error').textContent()).toContain('read-only role');
    expect((await service('web')).Spec.Mode.Replicated.Replicas).toBe(1);
  }, 60_000);
});
