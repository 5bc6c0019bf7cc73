/**
 * The fleet's rolling self-upgrade on dist/shoal (issue #19): 3 managers and 2 workers on loopback,
 * each daemon running a copy of the executable of its own. Bad input is refused with every node
 * untouched; N → N+1 replaces every node's executable one node at a time while process tasks keep
 * their pids and the cluster keeps committing; `--rollback` puts N back everywhere.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { alive, Cluster, type Daemon, leaderOf, logsOnFailure, waitFor } from '../harness/index.ts';

const ROOT = resolve(import.meta.dir, '../..');
const N: string = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
const [major, minor] = N.split('.').map(Number) as [number, number];
const NEXT = `${major}.${minor + 1}.0`;
const TOO_FAR = `${major}.${minor + 2}.0`;

const dir = mkdtempSync(join(tmpdir(), 'shoal-upgrade-'));
const next = join(dir, 'shoal-next');

beforeAll(() => {
  // The one extra build of the suite: the same source as version N+1.
  const t0 = performance.now();
  const r = Bun.spawnSync([process.execPath, join(ROOT, 'build.ts'), '--outfile', next], { env: { ...process.env, SHOAL_BUILD_VERSION: NEXT }, stdout: 'pipe', stderr: 'pipe' });
  if (r.exitCode !== 0) throw new Error(`building shoal ${NEXT}: ${r.stderr.toString()}`);
  console.log(`built shoal ${NEXT} in ${Math.round(performance.now() - t0)} ms`);
}, 180_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha256 = (path: string) => new Bun.CryptoHasher('sha256').update(readFileSync(path)).digest('hex');
const versions = async (d: Daemon) => (await d.json<any[]>('/nodes')).map((n) => n.Description.Engine.EngineVersion as string).sort();
const probe = (path: string) => Bun.spawnSync([path, '--version']).stdout.toString();
const pidsOf = (ts: any[]) => new Map(ts.map((t) => [t.ID as string, t.Status.ContainerStatus?.PID as number]));

/** Every node runs `version`: as the cluster sees it, and as each daemon's own executable says. */
async function expectAll(c: Cluster, via: Daemon, version: string): Promise<void> {
  expect(await versions(via)).toEqual(c.daemons.map(() => version));
  for (const d of c.daemons) expect(probe(d.binary)).toStartWith(`shoal version ${version},`);
}

/** Until stopped: create secrets through each manager in turn; the names each acknowledged. */
function writeLoop(managers: Daemon[]) {
  const acked: string[] = [];
  let failed = 0;
  let stop = false;
  const done = (async () => {
    for (let i = 0; !stop; i++) {
      const m = managers[i % managers.length]!;
      const name = `w-${i}`;
      try {
        const r = await m.api('/secrets/create', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ Name: name, Data: btoa(name) }), signal: AbortSignal.timeout(10_000) });
        if (r.status === 201) acked.push(name);
        else failed++;
      } catch {
        failed++; // that manager is restarting: not acknowledged, nothing to check
      }
    }
  })();
  return { acked, failures: () => failed, stop: async () => { stop = true; await done; } };
}

test('bad input is refused with every node untouched; N → N+1 keeps tasks and writes; --rollback returns to N', logsOnFailure(async () => {
  await using c = Cluster.loopback();
  const { managers, workers, ids } = await c.boot({ managers: 3, workers: 2, ownBinaries: true, readyMs: 30_000 });
  const m1 = managers[0]!;
  const original = new Map(c.daemons.map((d) => [d, sha256(d.binary)]));
  const untouched = async () => {
    await expectAll(c, m1, N);
    for (const d of c.daemons) {
      expect(sha256(d.binary)).toBe(original.get(d)!);
      expect(existsSync(`${d.binary}.previous`)).toBe(false);
    }
    expect((await m1.api('/shoal/upgrade')).status).toBe(404);
  };
  await untouched();

  // A corrupt executable: its bytes do not have the digest given.
  const corrupt = join(dir, 'corrupt');
  const bytes = readFileSync(next);
  bytes[bytes.length >> 1] ^= 0xff;
  writeFileSync(corrupt, bytes, { mode: 0o755 });
  const bad = await m1.cli('fleet', 'upgrade', '--binary', corrupt, '--sha256', sha256(next));
  expect(bad.code).toBe(1);
  expect(bad.stderr).toContain('checksum mismatch');
  expect(bad.stderr).toContain(sha256(next));

  // Not a shoal executable: its --version probe fails.
  const script = join(dir, 'not-shoal');
  writeFileSync(script, '#!/bin/sh\necho hello\n');
  chmodSync(script, 0o755);
  const notShoal = await m1.cli('fleet', 'upgrade', '--binary', script);
  expect(notShoal.code).toBe(1);
  expect(notShoal.stderr).toContain('failed its "--version" probe');

  // Two minor versions away: refused by the skew rule, naming both versions.
  const far = join(dir, 'too-far');
  writeFileSync(far, `#!/bin/sh\necho "shoal version ${TOO_FAR}, build test"\n`);
  chmodSync(far, 0o755);
  const skew = await m1.cli('fleet', 'upgrade', '--binary', far);
  expect(skew.code).toBe(1);
  expect(skew.stderr).toContain(`version ${TOO_FAR} is more than one minor version away from ${N}`);

  // --url: the manager downloads it. A good download with its digest reaches the probe (refused
  // there by the skew rule); a digest that does not match and a missing file are refused by name.
  using files = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: (r) => {
    const name = new URL(r.url).pathname.slice(1);
    return name === 'too-far' || name === 'corrupt' ? new Response(Bun.file(join(dir, name))) : new Response('no such file', { status: 404 });
  } });
  const url = (name: string) => `http://127.0.0.1:${files.port}/${name}`;
  const farUrl = await m1.cli('fleet', 'upgrade', '--url', url('too-far'), '--sha256', sha256(far));
  expect(farUrl.code).toBe(1);
  expect(farUrl.stderr).toContain(`version ${TOO_FAR} is more than one minor version away from ${N}`);
  const badUrl = await m1.cli('fleet', 'upgrade', '--url', url('corrupt'), '--sha256', sha256(next));
  expect(badUrl.code).toBe(1);
  expect(badUrl.stderr).toContain('checksum mismatch');
  const missing = await m1.cli('fleet', 'upgrade', '--url', url('gone'), '--sha256', sha256(next));
  expect(missing.code).toBe(1);
  expect(missing.stderr).toContain('the server answered 404');
  await untouched();

  // Work that must survive the upgrade: process tasks on the workers (and managers), and writes.
  await m1.ok('service', 'create', '--name', 'steady', '--replicas', '5', '--', '/bin/sleep', '3600');
  const before = await waitFor('5 running tasks', async () => {
    const r = await m1.running('steady');
    return r.length === 5 && r.every((t) => t.Status.ContainerStatus?.PID) ? r : null;
  }, 30_000);
  const daemonPids = c.daemons.map((d) => d.proc!.pid);
  const load = writeLoop(managers);

  const t0 = performance.now();
  const up = await m1.cli('fleet', 'upgrade', '--binary', next);
  const upMs = performance.now() - t0;
  expect(up.code, up.stderr + up.stdout).toBe(0);
  expect(up.stdout).toContain(`upgrade done: every node runs shoal ${NEXT}`);
  for (const w of workers) expect(up.stdout).toContain(`${ids.get(w)!.slice(0, 12)}`);
  console.log(`upgrade of 5 nodes (3 managers, 2 workers) to ${NEXT}: ${Math.round(upMs)} ms`);

  await c.waitReady(5, 3, 30_000);
  const leader = await leaderOf(managers, ids);
  await expectAll(c, leader, NEXT);
  for (const d of c.daemons) expect(probe(`${d.binary}.previous`)).toStartWith(`shoal version ${N},`);
  // Re-executed in place: the same processes, and every task still the same process.
  expect(c.daemons.map((d) => d.proc!.pid)).toEqual(daemonPids);
  expect(c.daemons.every((d) => d.isRunning)).toBe(true);
  const after = await m1.running('steady');
  expect(pidsOf(after)).toEqual(pidsOf(before));
  for (const pid of pidsOf(before).values()) expect(alive(pid)).toBe(true);
  const status = await leader.ok('fleet', 'upgrade', '--status');
  expect(status).toContain(`upgrade to shoal ${NEXT}: done`);

  await load.stop();
  expect(load.acked.length).toBeGreaterThan(10);
  const names = new Set((await leader.json<any[]>('/secrets')).map((s) => s.Spec.Name));
  expect(load.acked.filter((n) => !names.has(n))).toEqual([]);
  console.log(`writes during the upgrade: ${load.acked.length} acknowledged, ${load.failures()} refused while a manager restarted`);

  const t1 = performance.now();
  const back = await leader.cli('fleet', 'upgrade', '--rollback');
  expect(back.code, back.stderr + back.stdout).toBe(0);
  expect(back.stdout).toContain(`rollback done: every node runs shoal ${N}`);
  console.log(`rollback of 5 nodes to ${N}: ${Math.round(performance.now() - t1)} ms`);
  await c.waitReady(5, 3, 30_000);
  await expectAll(c, await leaderOf(managers, ids), N);
  for (const d of c.daemons) expect(sha256(d.binary)).toBe(original.get(d)!);
  expect(pidsOf(await m1.running('steady'))).toEqual(pidsOf(before));
}), 1_200_000);
