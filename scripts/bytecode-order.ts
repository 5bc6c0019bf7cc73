/**
 * Records the bytecode order files (scripts/bytecode-order/*.order) that build.ts lays the
 * executable's bytecode out by: which functions a worker, a manager and a CLI command use, in the
 * order they first do. Bun places that bytecode together at the front of the executable, so a
 * daemon touches fewer of its pages (docs/footprint.md has the figures).
 *
 *   bun build.ts && bun scripts/bytecode-order.ts && bun build.ts
 *
 * A profile from an older build still applies (functions are named by a hash of their code):
 * record again when much has changed. The run is a 1-manager + 1-worker loopback cluster of
 * dist/shoal, idle for a while, then stopped; and `shoal version`.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon, freePort, SHOAL } from '../test/harness/daemon.ts';

const OUT = join(import.meta.dir, 'bytecode-order');
const IDLE_MS = 8_000;

mkdirSync(OUT, { recursive: true });
const dir = mkdtempSync(join(tmpdir(), 'shoal-order-'));

function spawnRecorded(name: string, args: string[]) {
  return Bun.spawn([SHOAL, ...args], { stdout: 'ignore', stderr: 'pipe', env: { ...process.env, BUN_BYTECODE_ORDER_OUT: join(dir, `${name}.order`) } });
}

async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

const procs: ReturnType<typeof spawnRecorded>[] = [];
try {
  const m = new Daemon(join(dir, 'm'));
  const mPort = freePort('127.0.0.1');
  procs.push(spawnRecorded('manager', ['daemon', '--data-dir', m.dataDir, '--init', '--listen-addr', `127.0.0.1:${mPort}`, '--mesh-addr', '127.0.0.1']));
  await until('the manager', async () => (await m.api('/_ping')).ok);
  const token = (await m.ok('cluster', 'join-token', '-q', 'worker')).trim();
  const w = new Daemon(join(dir, 'w'));
  procs.push(spawnRecorded('worker', ['daemon', '--data-dir', w.dataDir, '--listen-addr', `127.0.0.2:${freePort('127.0.0.2')}`, '--mesh-addr', '127.0.0.2', '--join', `127.0.0.1:${mPort}`, '--token', token]));
  await until('the worker ready', async () => ((await m.json<any[]>('/nodes')) ?? []).filter((n) => n.Status?.State === 'ready').length === 2);
  await Bun.sleep(IDLE_MS); // the idle loop's own functions: heartbeats, gossip, timers
  for (const p of procs) p.kill('SIGTERM');
  for (const p of procs) await p.exited;
  const cli = spawnRecorded('cli', ['version']);
  await cli.exited;
  for (const name of ['worker', 'manager', 'cli']) renameSync(join(dir, `${name}.order`), join(OUT, `${name}.order`));
  console.log(`wrote ${OUT}/{worker,manager,cli}.order`);
} finally {
  for (const p of procs) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
