/**
 * `GET /events`, `shoal events` and `docker events` against dist/shoal: history between --since and
 * --until, a stream that sees what happens after it connected, filters, and a second manager that
 * serves the events of a change made through the first (each manager derives them from its log).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Cluster, type Daemon, logsOnFailure, SHOAL, tempDaemon, waitFor } from '../harness/index.ts';

const hasDocker = Bun.which('docker') !== null;
let d: Daemon & AsyncDisposable;

beforeAll(async () => {
  d = await tempDaemon();
  await d.start();
});
afterAll(async () => {
  await d?.[Symbol.asyncDispose]();
});

const nowSeconds = () => (Date.now() / 1000).toFixed(3);

/** Lines read from a running `shoal events` (or any stream) until `done` says enough. */
async function readUntil(stream: ReadableStream<Uint8Array>, what: string, done: (text: string) => boolean, timeoutMs = 20_000): Promise<string> {
  const reader = stream.getReader();
  const dec = new TextDecoder();
  let text = '';
  try {
    await waitFor(what, async () => {
      const { value, done: ended } = await reader.read();
      if (ended) throw new Error(`the stream ended: ${text}`);
      text += dec.decode(value, { stream: true });
      return done(text);
    }, timeoutMs);
  } finally {
    reader.releaseLock();
  }
  return text;
}

describe('events on one manager', () => {
  test('shoal events --since --until shows service create, update, remove and task state changes', async () => {
    const since = nowSeconds();
    await d.ok('service', 'create', '--name', 'evweb', '--', '/bin/sleep', '600');
    await d.ok('service', 'update', '--env-add', 'A=1', 'evweb');
    await d.ok('service', 'rm', 'evweb');
    const until = nowSeconds();
    const out = await d.ok('events', '--since', since, '--until', until);
    const lines = out.trim().split('\n');
    expect(lines.some((l) => / service create \w+ \(name=evweb\)$/.test(l))).toBe(true);
    expect(lines.some((l) => / service update \w+ .*name=evweb/.test(l))).toBe(true);
    expect(lines.some((l) => / service remove \w+ \(name=evweb\)$/.test(l))).toBe(true);
    expect(lines.some((l) => / task running \w+ .*name=evweb\.1.*state\.new=running/.test(l))).toBe(true);
    expect(lines.some((l) => / task shutdown \w+ .*service=evweb/.test(l))).toBe(true);

    const json = (await d.ok('events', '--since', since, '--until', until, '--filter', 'type=service', '--format', 'json')).trim().split('\n').map((l) => JSON.parse(l));
    expect(json.length).toBeGreaterThan(0);
    expect(json.every((e) => e.Type === 'service' && e.scope === 'swarm' && e.Actor.Attributes.name === 'evweb')).toBe(true);
    expect(json.map((e) => e.Action)).toContain('remove');
  }, 60_000);

  test('a streaming subscriber sees an event made after it connected; filters hold back the rest', async () => {
    // The 200 comes before any event (a blank first line), so once fetch resolves the daemon has subscribed it.
    const res = await d.api('/events?filters=' + encodeURIComponent('{"service":["evlive"],"event":["create"]}'));
    expect(res.status).toBe(200);
    // The CLI follows too; --since makes its start independent of when the process gets connected.
    const p = Bun.spawn([SHOAL, 'events', '--since', nowSeconds(), '--filter', 'service=evlive', '--filter', 'event=create'], { stdout: 'pipe', stderr: 'pipe', env: d.env });
    try {
      await d.ok('service', 'create', '--name', 'evother', '--', '/bin/sleep', '600');
      await d.ok('service', 'create', '--name', 'evlive', '--', '/bin/sleep', '600');
      const text = await readUntil(res.body!, 'the create of evlive in the stream', (t) => t.includes('"name":"evlive"'));
      const events = text.trim().split('\n').map((l) => JSON.parse(l));
      expect(events.every((e) => e.Action === 'create' && e.Actor.Attributes.name === 'evlive')).toBe(true);
      const cli = await readUntil(p.stdout as ReadableStream<Uint8Array>, 'the create of evlive from shoal events', (t) => t.includes('(name=evlive)'));
      expect(cli).toMatch(/^\S+Z service create \w+ \(name=evlive\)\n$/);
    } finally {
      await res.body!.cancel();
      p.kill();
      await p.exited;
      await d.ok('service', 'rm', 'evother', 'evlive');
    }
  }, 60_000);

  test('bad filters are refused naming them', async () => {
    const r = await d.cli('events', '--until', nowSeconds(), '--filter', 'colour=red');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('invalid filter "colour"');
    const res = await d.api('/v1.47/events?filters={oops');
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toContain('filters: malformed JSON');
  });

  test.skipIf(!hasDocker)('docker events --since 0 --until now --filter type=service prints them', async () => {
    await d.ok('service', 'create', '--name', 'evdocker', '--', '/bin/sleep', '600');
    await d.ok('service', 'rm', 'evdocker');
    const p = Bun.spawn(['docker', 'events', '--since', '0', '--until', nowSeconds(), '--filter', 'type=service'], {
      stdout: 'pipe', stderr: 'pipe', env: { ...d.env, DOCKER_HOST: `unix://${d.socket}`, DOCKER_CLI_HINTS: 'false' },
    });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toMatch(/ service create \w+ \(name=evdocker\)\n/);
    expect(out).toMatch(/ service remove \w+ \(name=evdocker\)\n/);
    expect(out).not.toContain(' task ');
  }, 30_000);
});

test('a change made through manager 1 shows in manager 2\'s stream', logsOnFailure(async () => {
  await using cluster = Cluster.loopback();
  const { managers: [m1, m2] } = await cluster.boot({ managers: 2, workers: 0 });
  const res = await m2!.api('/events?filters=' + encodeURIComponent('{"type":["service"],"service":["evm2"]}'));
  expect(res.status).toBe(200);
  await m1!.ok('service', 'create', '--name', 'evm2', '--', '/bin/sleep', '600');
  const text = await readUntil(res.body!, 'the create of evm2 in manager 2\'s stream', (t) => /"Action":"create".*"name":"evm2"/.test(t), 30_000);
  const created = JSON.parse(text.trim().split('\n').find((l) => l.includes('"evm2"'))!);
  expect(created).toMatchObject({ Type: 'service', Action: 'create', scope: 'swarm' });
  await res.body!.cancel();
  // The same event, with the same time, in manager 1's history: both derive it from the same entry.
  const r = await m1!.api(`/events?since=0&until=${nowSeconds()}&filters=${encodeURIComponent('{"service":["evm2"],"event":["create"]}')}`);
  const m1History = (await r.text()).trim().split('\n').map((l) => JSON.parse(l));
  expect(m1History.map((e) => e.timeNano)).toContain(created.timeNano);
}), 120_000);
