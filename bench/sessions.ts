/**
 * A manager serving many worker sessions (issue 4, item 10): the manager's stages and dispatcher
 * in a child process (bench/sessions-manager.ts), and N lightweight session clients in this one,
 * each registering as its own node and heartbeating at the period the dispatcher asks for (default
 * 1 s, jittered). Reported: the manager process's CPU (% of one core) and RSS over a window, with
 * N = 1 as the anchor. Also the idle RSS of a worker: dist/shoal joined as a worker to a one-manager
 * cluster, no tasks.
 */
import { resolve } from 'node:path';
import { FrameChannel, SESSION_FRAMES, type SessionMessages } from '../src/manager/dispatcher/index.ts';
import { description } from '../src/manager/dispatcher/testkit.ts';
import { Cluster, requireBinary } from '../test/harness/index.ts';
import { cpuSecondsOf, type Figure, report, rssOf } from './lib.ts';
import { SocketConn } from './sessions-manager.ts';

const WINDOW_MS = 10_000;

async function until<T>(what: string, check: () => T | null | false, boundMs: number): Promise<T> {
  const deadline = performance.now() + boundMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
    await Bun.sleep(10);
  }
}

interface Client { registered: boolean; heartbeats: number; channel: FrameChannel<SessionMessages>; timer?: ReturnType<typeof setTimeout> }

async function session(port: number, nodeId: string): Promise<Client> {
  const holder: { conn?: SocketConn } = {};
  const socket = await Bun.connect({
    hostname: '127.0.0.1',
    port,
    socket: {
      data(_s, d) { holder.conn?.data(new Uint8Array(d)); },
      drain() { holder.conn?.drain(); },
      close() { holder.conn?.close('manager closed'); },
    },
  });
  const conn = new SocketConn(socket as never);
  holder.conn = conn;
  const c: Client = { registered: false, heartbeats: 0, channel: new FrameChannel(conn, SESSION_FRAMES) };
  let sessionId = '';
  const beat = (ms: number) => {
    c.timer = setTimeout(() => c.channel.send({ t: 'heartbeat', b: { sessionId } }), ms);
  };
  c.channel.onMessage((m) => {
    if (m.t === 'session.registered') {
      const b = m.b as SessionMessages['session.registered'];
      sessionId = b.sessionId;
      c.registered = true;
      beat(b.heartbeatPeriodMs);
    } else if (m.t === 'heartbeat.ack') {
      c.heartbeats++;
      beat((m.b as SessionMessages['heartbeat.ack']).heartbeatPeriodMs);
    } else if (m.t === 'session.error') {
      console.error(`session ${nodeId} refused: ${(m.b as SessionMessages['session.error']).message}`);
    }
  });
  c.channel.send({ t: 'session.register', b: { nodeId, description: description(nodeId) } });
  return c;
}

async function measure(n: number): Promise<{ cpuPct: number; rss: number; heartbeatsPerS: number }> {
  const child = Bun.spawn(['bun', resolve(import.meta.dir, 'sessions-manager.ts'), String(n)], { stdout: 'pipe', stderr: 'inherit' });
  try {
    const reader = (child.stdout as ReadableStream<Uint8Array>).getReader();
    let out = '';
    const port = await (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`manager exited: ${out}`);
        out += new TextDecoder().decode(value);
        const m = /port (\d+)/.exec(out);
        if (m) return Number(m[1]);
      }
    })();
    const clients: Client[] = [];
    for (let i = 0; i < n; i++) clients.push(await session(port, `bench-node-${i}`));
    await until(`${n} sessions registered`, () => clients.every((c) => c.registered), 60_000);
    // Every session through one heartbeat round before the window opens.
    await until('a heartbeat on every session', () => clients.every((c) => c.heartbeats > 0), 30_000);
    const t0 = performance.now();
    const c0 = cpuSecondsOf(child.pid);
    const h0 = clients.reduce((s, c) => s + c.heartbeats, 0);
    let rss = 0;
    while (performance.now() - t0 < WINDOW_MS) {
      rss = Math.max(rss, rssOf(child.pid));
      await Bun.sleep(500);
    }
    const secs = (performance.now() - t0) / 1000;
    const cpuPct = ((cpuSecondsOf(child.pid) - c0) / secs) * 100;
    const heartbeatsPerS = (clients.reduce((s, c) => s + c.heartbeats, 0) - h0) / secs;
    for (const c of clients) { clearTimeout(c.timer); c.channel.close(); c.channel.conn.close(); }
    return { cpuPct, rss, heartbeatsPerS };
  } finally {
    child.kill();
    await child.exited;
  }
}

async function workerIdleRss(): Promise<{ worker: number; manager: number }> {
  requireBinary();
  await using cluster = Cluster.loopback();
  const { managers: [m1], workers: [w] } = await cluster.boot({ managers: 1, workers: 1 });
  if (!m1 || !w) throw new Error('boot returned no manager or worker');
  // Idle: sample over a window of heartbeats; the figure is the largest RSS seen.
  let worker = 0;
  let manager = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < WINDOW_MS) {
    worker = Math.max(worker, rssOf(w.proc!.pid));
    manager = Math.max(manager, rssOf(m1.proc!.pid));
    await Bun.sleep(500);
  }
  return { worker, manager };
}

export async function run(): Promise<{ figures: Figure[]; raw: unknown }> {
  const n = Number(process.env.SHOAL_BENCH_SESSIONS ?? 500);
  console.log(`manager serving worker sessions (dispatcher + stages in a child process, plain TCP, default 1 s heartbeats; ${WINDOW_MS / 1000} s window)`);
  const one = await measure(1);
  const many = await measure(n);
  const MiB = 2 ** 20;
  console.log('idle worker (dist/shoal joined as a worker to a one-manager cluster, no tasks)');
  const idle = await workerIdleRss();
  return {
    raw: { one, many, idle, sessions: n },
    figures: [
      report({ name: `manager CPU, ${n} sessions`, value: many.cpuPct, unit: '% core', anchor: `1 session ${one.cpuPct.toFixed(2)} %` }),
      report({ name: `manager RSS, ${n} sessions`, value: many.rss / MiB, unit: 'MiB', anchor: `1 session ${(one.rss / MiB).toFixed(1)} MiB` }),
      report({ name: `heartbeats served, ${n} sessions`, value: many.heartbeatsPerS, unit: '/s', anchor: `${n} at 1 s period ≈ ${n}/s` }),
      report({ name: 'worker idle RSS (dist/shoal)', value: idle.worker / MiB, unit: 'MiB', anchor: `its manager ${(idle.manager / MiB).toFixed(1)} MiB` }),
    ],
  };
}

if (import.meta.main) await run();
