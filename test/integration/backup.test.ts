/**
 * Backup and restore through dist/shoal, as an operator does it (docs/backup.md): a backup taken on
 * a follower of three managers while writes go on is one point of the log; a daemon started with
 * --restore on another host and an empty data dir brings the cluster up again with every object,
 * the service's task runs there and reads its secret, and a worker joins with the old cluster's
 * token. Bad files and another cluster's data dir are refused, and nothing is written.
 */
import { afterEach, expect, test } from 'bun:test';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CliResult, Cluster, Daemon, disposeAll, freePort, leaderOf, logsOnFailure, SHOAL, tempDaemon, tlsDaemon, waitFor } from '../harness/index.ts';

afterEach(() => disposeAll());

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

async function cliStdin(d: Daemon, input: string, ...args: string[]): Promise<CliResult> {
  const p = Bun.spawn([SHOAL, ...args], { stdin: Buffer.from(input), stdout: 'pipe', stderr: 'pipe', env: d.env });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

/** `shoal daemon … --restore` that must fail at once: its exit code and what it printed. */
async function restoreRefused(args: string[]): Promise<CliResult> {
  const p = Bun.spawn([SHOAL, 'daemon', ...args], { stdout: 'pipe', stderr: 'pipe' });
  const exited = await Promise.race([p.exited, Bun.sleep(20_000).then(() => null)]);
  if (exited === null) {
    p.kill('SIGKILL');
    throw new Error(`shoal daemon ${args.join(' ')} kept running: it should have refused`);
  }
  return { code: exited, stdout: await new Response(p.stdout).text(), stderr: await new Response(p.stderr).text() };
}

const TABLE_ROUTES = ['services', 'networks', 'secrets', 'configs'] as const;

test('backup on a follower under writes; restore on a new host: every object, the task with its secret, a worker with the old token', logsOnFailure(async () => {
  await using c = Cluster.loopback();
  const { managers, ids } = await c.boot({ managers: 3, workers: 0 });
  const [m1] = managers as [Daemon];
  const tokens = { ...c.tokens };
  const value = `s3cret-${randomUUID()}`;
  expect((await cliStdin(m1, value, 'secret', 'create', 'pw', '-')).code).toBe(0);
  expect((await cliStdin(m1, 'key = 1\n', 'config', 'create', 'app.conf', '-')).code).toBe(0);
  await m1.ok('network', 'create', '--label', 'tier=back', 'backnet');
  await m1.ok('service', 'create', '-d', '--name', 'reader', '--secret', 'pw', '--restart-condition', 'none',
    '/bin/sh', '-c', 'sha256sum < "$SHOAL_SECRETS_DIR/pw"; exec sleep 1000');
  await m1.ok('service', 'create', '-d', '--name', 'idle', '--runtime', 'mock', '--replicas', '3', '--label', 'keep=me');
  await waitFor('reader running', async () => (await m1.running('reader')).length === 1, 30_000);

  // Writes go on through the leader while the backup is taken on a follower.
  const leader = await leaderOf(managers, ids);
  const follower = managers.find((m) => m !== leader)!;
  let writing = true;
  let written = 0;
  const writer = (async () => {
    for (let i = 0; writing && i < 2000; i++) {
      const r = await leader.api('/configs/create', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ Name: `w${i}`, Data: Buffer.from(`v${i}`).toString('base64') }) });
      if (r.ok) written++;
    }
  })();
  await waitFor('writes under way', () => written >= 5, 20_000);
  const file = join(c.dir, 'cluster.backup');
  const printed = await follower.ok('swarm', 'backup', '--out', file);
  const before = written;
  await waitFor('writes after the backup', () => written >= before + 5, 20_000);
  writing = false;
  await writer;

  const m = /raft index (\d+) \(term (\d+)\) on node (\S+), (\d+) objects .*, (\d+) bytes\./.exec(printed);
  expect(m).not.toBeNull();
  const index = Number(m![1]);
  expect(m![3]).toBe(ids.get(follower)!);
  expect(Number(m![5])).toBe(statSync(file).size);
  expect(statSync(file).mode & 0o777).toBe(0o600);
  expect(readFileSync(file).includes(value)).toBe(false); // base64 inside, as in the raft log; not the raw bytes either way

  const old: Record<string, any[]> = {};
  for (const t of TABLE_ROUTES) old[t] = await m1.json(`/${t}`);
  const oldSwarm = await m1.json('/swarm');
  const oldTasks: any[] = await m1.json('/tasks');
  // The snapshot fell between writes: some of the writer's configs are in it, some came after.
  const writerConfigs = old.configs!.filter((o) => /^w\d+$/.test(o.Spec.Name));
  expect(writerConfigs.some((o) => o.Version.Index <= index)).toBe(true);
  expect(writerConfigs.some((o) => o.Version.Index > index)).toBe(true);

  // Another host, an empty data dir.
  const ip = '127.0.0.9';
  const restored = c.adopt(new Daemon(join(c.dir, 'restored'), ['--listen-addr', `${ip}:${freePort(ip)}`, '--mesh-addr', ip, '--restore', file, '--force-new-cluster'], { name: 'restored' }));
  await restored.start(false);
  expect(restored.output).toContain(`--restore: cluster ${oldSwarm.ID} restored from ${file} (raft index ${index}`);
  const newId = (await restored.json('/info')).Swarm.NodeID as string;

  // Every object of the backup as it was at its index: networks, secrets and configs whole (ID, Spec,
  // Version, CreatedAt, UpdatedAt; a network's subnet and VXLAN id); services by ID, Spec, CreatedAt
  // and Endpoint (VIPs), their Version at least the old one (the new leader's stages may write them).
  const idOf = (o: any) => o.ID ?? o.Id;
  for (const t of TABLE_ROUTES) {
    const now: any[] = await restored.json(`/${t}`);
    const expected = old[t]!.filter((o) => o.Version.Index <= index);
    const byId = new Map(now.map((o) => [idOf(o), o]));
    for (const o of expected) {
      const r = byId.get(idOf(o));
      expect(r, `${t} ${idOf(o)}`).toBeDefined();
      if (t !== 'services') {
        expect(r).toEqual(o);
      } else {
        expect(r.Spec).toEqual(o.Spec);
        expect(r.CreatedAt).toBe(o.CreatedAt);
        expect(r.Endpoint).toEqual(o.Endpoint);
        expect(r.Version.Index).toBeGreaterThanOrEqual(o.Version.Index);
      }
    }
    // Only writer configs written after the backup are missing; nothing is there that the backup did not hold.
    expect(now.length).toBe(expected.length);
  }
  // Tasks too (the old ones stay, as history or to be replaced: their nodes are gone).
  const restoredTasks = new Map((await restored.json<any[]>('/tasks')).map((t) => [t.ID, t]));
  for (const t of oldTasks.filter((x) => x.Version.Index <= index)) {
    expect(restoredTasks.get(t.ID)?.Spec, `task ${t.ID}`).toEqual(t.Spec);
  }
  const swarm = await restored.json('/swarm');
  expect(swarm.ID).toBe(oldSwarm.ID);
  expect(swarm.Spec).toEqual(oldSwarm.Spec);
  expect(swarm.JoinTokens).toEqual(oldSwarm.JoinTokens);
  expect(swarm.TLSInfo.TrustRoot).toBe(oldSwarm.TLSInfo.TrustRoot);
  expect(swarm.Version.Index).toBeGreaterThan(index);
  const nodes: any[] = await restored.json('/nodes');
  expect(nodes.map((n) => n.ID)).toEqual([newId]); // the old managers were removed
  expect(nodes[0].ManagerStatus.Leader).toBe(true);

  // The restored service's task runs on the new host, with the secret's content.
  const [task] = await waitFor('reader running on the restored host', async () => {
    const r = await restored.running('reader');
    return r.length === 1 && r[0].NodeID === newId ? r : null;
  }, 30_000);
  await waitFor('the secret in the task', async () => (await restored.cli('service', 'logs', 'reader')).stdout.includes(sha(value)), 15_000);
  expect(task.ServiceID).toBe(old.services!.find((s) => s.Spec.Name === 'reader').ID);
  await waitFor('idle running 3/3', async () => (await restored.running('idle')).length === 3, 30_000);

  // A worker joins with the old cluster's token (the CA and the token secrets came with the backup).
  const w = await c.add({ join: [restored.addr, tokens.worker], name: 'w-new' });
  const wid = await waitFor('the worker in /info', async () => (await w.json('/info')).Swarm.NodeID as string, 20_000);
  await waitFor('the worker ready in the restored cluster', async () => (await restored.json<any[]>('/nodes')).some((n) => n.ID === wid && n.Status.State === 'ready'), 30_000);

  // Started again with the same flags (a unit file keeps them): recognised, not rolled back to the backup.
  await restored.restart();
  await waitFor('the restart to recognise the backup', () => restored.output.includes(`--restore: this data dir was restored from ${file} already`), 20_000);
  expect((await restored.json<any[]>('/nodes')).some((n) => n.ID === wid)).toBe(true);
}), 240_000);

test('bad input: truncated, a flipped byte, not a backup, another cluster\'s data dir: clear error, nothing written', logsOnFailure(async () => {
  await using a = await tempDaemon(['--listen-addr', `127.0.0.1:${freePort()}`]);
  await a.start();
  await cliStdin(a, 'hush', 'secret', 'create', 'pw', '-');
  const dir = a.dataDir;
  const good = join(dir, '..', `${a.dataDir.split('/').pop()}.backup`);
  await a.ok('swarm', 'backup', '--out', good);
  const bytes = readFileSync(good);
  const clusterA = (await a.json('/swarm')).ID as string;

  const bad = (name: string, b: Uint8Array) => {
    const f = join(dir, '..', `${a.dataDir.split('/').pop()}-${name}`);
    writeFileSync(f, b);
    return f;
  };
  const flipped = Buffer.from(bytes);
  flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
  const cases: [string, string, RegExp][] = [
    ['truncated', bad('truncated', bytes.subarray(0, bytes.length - 100)), /is truncated: it holds \d+ bytes/],
    ['flipped', bad('flipped', flipped), /is damaged: its SHA-256 does not match its content/],
    ['not a backup', bad('notes', Buffer.from('just some notes\n')), /is not a shoal backup \(it does not begin with "SHOALBAK"\)/],
  ];
  try {
    for (const [what, f, message] of cases) {
      const fresh = join(dir, '..', `${a.dataDir.split('/').pop()}-fresh`);
      const r = await restoreRefused(['--data-dir', fresh, '--restore', f, '--force-new-cluster']);
      expect(r.code, what).toBe(1);
      expect(r.stderr, what).toMatch(message);
      expect(r.stderr, what).toContain(`--restore ${f}`);
      expect(existsSync(fresh), `${what}: the data dir was created`).toBe(false);
    }

    // A data dir of another cluster: refused naming both, with and without --force-new-cluster; its files unchanged.
    await using b = await tempDaemon(['--listen-addr', `127.0.0.1:${freePort()}`]);
    await b.start();
    await b.ok('cluster', 'join-token', '-q', 'worker'); // its identity (cluster.json) is written
    const clusterB = (await b.json('/swarm')).ID as string;
    await b.stop();
    const listing = () => readdirSync(join(b.dataDir, 'raft')).map((n) => `${n}:${statSync(join(b.dataDir, 'raft', n)).size}`).sort();
    const files = listing();
    for (const force of [[], ['--force-new-cluster']]) {
      const r = await restoreRefused(['--data-dir', b.dataDir, '--restore', good, ...force]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`belongs to cluster ${clusterB} (this host is a manager of it), the backup is of cluster ${clusterA}`);
    }
    expect(listing()).toEqual(files);
    expect(existsSync(join(b.dataDir, 'restore.json'))).toBe(false);
  } finally {
    for (const f of [good, ...cases.map((x) => x[1])]) Bun.spawnSync(['rm', '-f', f]);
  }
}), 120_000);

test('over TCP: an admin bundle takes a backup, a read-only bundle is refused', logsOnFailure(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-backup-tls-'));
  const { d, tcp } = await tlsDaemon(dir);
  await using _ = d as Daemon & AsyncDisposable;
  try {
    const over = async (bundle: string, out: string) => {
      const p = Bun.spawn([SHOAL, 'swarm', 'backup', '--out', out], { stdout: 'pipe', stderr: 'pipe', env: { ...process.env, SHOAL_HOST: `tcp://127.0.0.1:${tcp}`, SHOAL_CERT_PATH: join(dir, bundle) } });
      const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      return { code, stdout, stderr };
    };
    const ok = await over('alice', join(dir, 'a.backup'));
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`written to ${join(dir, 'a.backup')}: raft index`);
    expect(readFileSync(join(dir, 'a.backup')).subarray(0, 8).toString()).toBe('SHOALBAK');
    const refused = await over('bob', join(dir, 'b.backup'));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('the client bundle of "bob" has the read-only role: POST /swarm/backup needs an admin bundle');
    expect(existsSync(join(dir, 'b.backup'))).toBe(false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}), 60_000);
