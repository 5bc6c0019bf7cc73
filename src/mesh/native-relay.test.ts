/**
 * The native relay's thread and its events, below the ingress proxy (whose behaviour both data paths
 * share is tested in ingress.test.ts).
 */
import { afterEach, expect, test } from 'bun:test';
import { readdirSync, readFileSync } from 'node:fs';
import { PortUnavailableError } from './errors.ts';
import { type NativeRelay, nativeRelay, relayPinning, relayThreads } from './native-relay.ts';
import { connectClient, refusedPort, silentBackend, waitFor } from './testkit.ts';

const HOST = '127.0.0.1';
const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

async function relay(): Promise<NativeRelay> {
  const r = await nativeRelay();
  // On this project's machines and CI the native relay must build; a string says why it did not.
  if (typeof r === 'string') throw new Error(`the native relay is not available: ${r}`);
  return r;
}

/** A listener whose handler records what it is told and answers nothing unless asked to. */
function recorder(onAccepted?: (slot: number, gen: number) => void) {
  const seen: string[] = [];
  return {
    seen,
    handler: {
      accepted(slot: number, gen: number, addr: string) {
        seen.push(`accepted ${addr}`);
        onAccepted?.(slot, gen);
      },
      connected(_s: number, _g: number, attempt: number) {
        seen.push(`connected ${attempt}`);
      },
      failed(_s: number, _g: number, attempt: number, errno: number) {
        seen.push(`failed ${attempt} ${errno}`);
      },
      closed() {
        seen.push('closed');
      },
    },
  };
}

test('a refused connect comes back as failed, with the attempt and the errno', async () => {
  const r = await relay();
  const rec = recorder((slot, gen) => expect(r.connect(slot, gen, HOST, refusedPort(HOST), 7, 2000)).toBe(0));
  const { id, port } = r.listen(HOST, 0, rec.handler);
  cleanups.push(() => r.unlisten(id));
  const c = await connectClient(port);
  await waitFor(() => rec.seen.includes('failed 7 111'), `failed with ECONNREFUSED (saw ${rec.seen.join(', ')})`);
  expect(rec.seen[0]).toBe(`accepted ${HOST}`);
  c.socket.end();
});

test('a connect that does not complete in its time comes back as failed with ETIMEDOUT', async () => {
  const r = await relay();
  const silent = await silentBackend(HOST);
  cleanups.push(() => silent.stop());
  const rec = recorder((slot, gen) => expect(r.connect(slot, gen, HOST, silent.port, 1, 200)).toBe(0));
  const { id, port } = r.listen(HOST, 0, rec.handler);
  cleanups.push(() => r.unlisten(id));
  const c = await connectClient(port);
  await waitFor(() => rec.seen.includes('failed 1 110'), `failed with ETIMEDOUT (saw ${rec.seen.join(', ')})`);
  c.socket.end();
});

test('a connection this side never answers is closed by its thread after its grace, not kept', async () => {
  const r = await relay();
  r.setGraceMs(200);
  cleanups.push(() => r.setGraceMs(60_000));
  const rec = recorder(); // answers nothing: as if an event had been lost
  const { id, port } = r.listen(HOST, 0, rec.handler);
  cleanups.push(() => r.unlisten(id));
  const before = r.connections;
  // One per thread: each waits in another thread's share, whose loop had no deadline before it came.
  const clients = [];
  for (let i = 0; i < r.threads; i++) clients.push(await connectClient(port));
  const closed = () => rec.seen.filter((e) => e === 'closed').length;
  await waitFor(() => closed() === clients.length, `all closed after the grace (saw ${rec.seen.join(', ')})`);
  for (const c of clients) await waitFor(() => c.closed(), 'the client sees it closed');
  expect(r.connections).toBe(before);
});

test('connections are spread over the threads, each relaying its own', async () => {
  const r = await relay();
  const backend = Bun.listen({ hostname: HOST, port: 0, socket: { data: (s, d) => void s.write(d) } });
  cleanups.push(() => backend.stop(true));
  const rec = recorder((slot, gen) => expect(r.connect(slot, gen, HOST, backend.port, 1, 2000)).toBe(0));
  const { id, port } = r.listen(HOST, 0, rec.handler);
  cleanups.push(() => r.unlisten(id));
  const clients = await Promise.all(Array.from({ length: 4 * r.threads }, () => connectClient(port)));
  await waitFor(() => rec.seen.filter((e) => e === 'connected 1').length === clients.length, 'every connection connected');
  for (let k = 0; k < r.threads; k++) expect(r.connectionsOf(k)).toBeGreaterThan(0);
  await Promise.all(clients.map(async (c, i) => {
    c.socket.write(`hello ${i}`);
    await waitFor(() => c.received() === `hello ${i}`, `client ${i} echoed`);
  }));
  for (const c of clients) c.socket.end();
  await waitFor(() => rec.seen.filter((e) => e === 'closed').length === clients.length, 'every connection closed');
});

test('the number of threads: one per CPU up to 8, or SHOAL_MESH_THREADS', () => {
  expect(relayThreads({}, 2)).toBe(2);
  expect(relayThreads({}, 64)).toBe(8);
  expect(relayThreads({}, 0)).toBe(1);
  expect(relayThreads({ SHOAL_MESH_THREADS: '3' }, 2)).toBe(3);
  expect(() => relayThreads({ SHOAL_MESH_THREADS: '0' }, 2)).toThrow(/SHOAL_MESH_THREADS must be a whole number from 1 to 8, not "0"/);
  expect(() => relayThreads({ SHOAL_MESH_THREADS: 'many' }, 2)).toThrow(/not "many"/);
});

test('each thread is pinned to a CPU of its own when there are as many CPUs as threads; SHOAL_MESH_PIN=0 turns it off', async () => {
  const r = await relay();
  const status = (path: string) => readFileSync(path, 'utf8');
  const allowed = (text: string) => text.match(/^Cpus_allowed_list:\s*(\S+)/m)![1]!;
  const count = (list: string) => list.split(',').reduce((n, part) => {
    const [a, b] = part.split('-').map(Number);
    return n + (b === undefined ? 1 : b - a! + 1);
  }, 0);
  const cpus = count(allowed(status('/proc/self/status')));
  expect(r.pinned).toBe(cpus >= r.threads ? r.threads : 0);
  // The pinned threads are there to see: threads of this process allowed on one CPU only, all different.
  const single = readdirSync('/proc/self/task').map((t) => allowed(status(`/proc/self/task/${t}/status`))).filter((l) => count(l) === 1);
  expect(new Set(single).size).toBeGreaterThanOrEqual(r.pinned);
  // Tasks the daemon starts are not pinned with them: a child gets the whole process's CPUs.
  const child = Bun.spawnSync(['sh', '-c', 'grep Cpus_allowed_list /proc/self/status']).stdout.toString();
  expect(count(allowed(child))).toBe(cpus);
  // Off: the same relay started in a process of its own with SHOAL_MESH_PIN=0 pins nothing.
  const script = `const { nativeRelay } = await import(${JSON.stringify(`${import.meta.dir}/native-relay.ts`)}); const r = await nativeRelay(); console.log(typeof r === 'string' ? r : \`\${r.threads} \${r.pinned}\`);`;
  const off = Bun.spawnSync([process.execPath, '-e', script], { env: { ...process.env, SHOAL_MESH_PIN: '0' } }).stdout.toString().trim();
  expect(off).toBe(`${r.threads} 0`);
  expect(relayPinning({})).toBe(true);
  expect(relayPinning({ SHOAL_MESH_PIN: '1' })).toBe(true);
  expect(relayPinning({ SHOAL_MESH_PIN: '0' })).toBe(false);
  expect(() => relayPinning({ SHOAL_MESH_PIN: 'yes' })).toThrow(/SHOAL_MESH_PIN must be 0 or 1, not "yes"/);
});

test('a port in use is a named error', async () => {
  const r = await relay();
  const { id, port } = r.listen(HOST, 0, recorder().handler);
  cleanups.push(() => r.unlisten(id));
  expect(() => r.listen(HOST, port, recorder().handler)).toThrow(PortUnavailableError);
  expect(() => r.listen(HOST, port, recorder().handler)).toThrow(/address already in use/);
  expect(() => r.listen('::zz', 0, recorder().handler)).toThrow(/invalid argument/);
});
