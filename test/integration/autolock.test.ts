/**
 * Encryption at rest and autolock through dist/shoal: a secret's bytes (raw or base64) and the
 * cluster's CA key are nowhere in the data dir; with autolock on, a restarted manager refuses work
 * with Docker's "locked" error until `shoal swarm unlock` gets the right key (a wrong one is
 * refused and it stays locked), then serves its state intact; a rotated key replaces the old one;
 * and in a three-manager cluster a locked manager rejoins the raft once unlocked.
 */
import { describe, expect, test } from 'bun:test';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CliResult, Cluster, type Daemon, SHOAL, tempDaemon, waitFor } from '../harness/index.ts';

async function cliStdin(d: Daemon, input: string, ...args: string[]): Promise<CliResult> {
  const p = Bun.spawn([SHOAL, ...args], { stdin: Buffer.from(input), stdout: 'pipe', stderr: 'pipe', env: d.env });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

/** Files under `dir` holding `needle` (grep -F over everything, binary included). */
function filesWith(dir: string, needle: string): string[] {
  const r = Bun.spawnSync(['grep', '-rlaF', '--devices=skip', '-e', needle, dir], { stdout: 'pipe', stderr: 'pipe' });
  if (r.exitCode > 1) throw new Error(`grep ${dir}: ${r.stderr.toString()}`);
  return r.stdout.toString().split('\n').filter(Boolean);
}

const LOCKED = /Swarm is encrypted and needs to be unlocked/;

/** Restarted without --init; with autolock its API answers (ping) while the manager is locked. */
async function restart(d: Daemon): Promise<void> {
  await d.stop();
  await d.start(false);
}

describe('encryption at rest and autolock on one host', () => {
  test('secret bytes and the CA key are not on disk; a locked manager refuses work until the right key; rotation retires the old key', async () => {
    await using d = await tempDaemon();
    await d.start();
    const value = `at-rest-${randomUUID()}`;
    expect((await cliStdin(d, value, 'secret', 'create', 'pw', '-')).code).toBe(0);
    await d.ok('service', 'create', '--name', 'keep', '--replicas', '2', '--', '/bin/sleep', '3600');
    const cluster = await d.json('/swarm');
    expect(cluster.UnlockKey).toBeUndefined();
    const token = cluster.JoinTokens.Manager as string;

    // The raft log sealed: neither the secret (raw or as the API's base64) nor the token.
    expect(filesWith(d.dataDir, value)).toEqual([]);
    expect(filesWith(d.dataDir, Buffer.from(value).toString('base64'))).toEqual([]);
    expect(filesWith(d.dataDir, token)).toEqual([]);
    // The CA's key (PEM, in the replicated cluster object) neither: no PEM private key anywhere.
    await waitFor('the cluster CA', async () => (await d.json('/swarm')).TLSInfo?.TrustRoot);
    expect(filesWith(d.dataDir, 'PRIVATE KEY-----')).toEqual([]);
    const dek = JSON.parse(readFileSync(join(d.dataDir, 'dek.json'), 'utf8'));
    expect(typeof dek.DEK).toBe('string'); // no autolock: the data key in the clear, mode 0600

    // Autolock on: the key is printed once, and GET /swarm never shows it.
    const out = await d.ok('swarm', 'update', '--autolock=true');
    const key = /SWMKEY-1-[A-Za-z0-9+/]+/.exec(out)?.[0];
    expect(key).toBeDefined();
    expect(JSON.stringify(await d.json('/swarm'))).not.toContain(key!);
    expect((await d.ok('swarm', 'unlock-key', '-q')).trim()).toBe(key!);
    await waitFor('the keys sealed', () => JSON.parse(readFileSync(join(d.dataDir, 'dek.json'), 'utf8')).Sealed);

    await restart(d);
    const info = await d.json('/info');
    expect(info.Swarm.LocalNodeState).toBe('locked');
    const refused = await d.cli('service', 'ls');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(LOCKED);
    expect((await d.api('/services')).status).toBe(503);

    // A wrong key (well formed, and not a key at all) is refused; it stays locked.
    const wrong = await cliStdin(d, 'SWMKEY-1-' + Buffer.alloc(32, 7).toString('base64').replace(/=+$/, '') + '\n', 'swarm', 'unlock');
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain('invalid key provided');
    const garbage = await d.api('/swarm/unlock', { method: 'POST', body: JSON.stringify({ UnlockKey: 'hunter2' }) });
    expect(garbage.status).toBe(401);
    expect((await d.json('/info')).Swarm.LocalNodeState).toBe('locked');
    // Stopped while locked, it starts locked again.
    expect(await d.stop()).toBe(0);
    await d.start(false);
    expect((await d.json('/info')).Swarm.LocalNodeState).toBe('locked');

    const unlocked = await cliStdin(d, `${key}\n`, 'swarm', 'unlock');
    expect(unlocked.code).toBe(0);
    await waitFor('the manager serving again', async () => (await d.api('/services')).ok);
    expect((await d.json('/info')).Swarm.LocalNodeState).toBe('active');
    const services = await d.json('/services');
    expect(services.map((s: any) => s.Spec.Name)).toEqual(['keep']);
    expect((await d.json('/secrets')).map((s: any) => s.Spec.Name)).toEqual(['pw']);
    await waitFor('both tasks running again', async () => (await d.running('keep')).length === 2);

    // Rotation: the new key unlocks, the old one no longer does.
    const rotated = (await d.ok('swarm', 'unlock-key', '--rotate', '-q')).trim();
    expect(rotated).not.toBe(key!);
    expect(rotated).toStartWith('SWMKEY-1-');
    await waitFor('the keys sealed under the new key', () => readFileSync(join(d.dataDir, 'dek.json'), 'utf8') !== JSON.stringify(dek) && d.output.includes('sealed under'));
    await restart(d);
    const old = await cliStdin(d, `${key}\n`, 'swarm', 'unlock');
    expect(old.stderr).toContain('invalid key provided');
    expect((await d.ok('swarm', 'unlock', '--key', rotated))).toContain('unlocked');
    await waitFor('the manager serving again', async () => (await d.api('/services')).ok);

    // Autolock off: the next restart is not locked, and the secret is still not on disk.
    await d.ok('swarm', 'update', '--autolock=false');
    expect((await d.json('/swarm/unlockkey')).UnlockKey).toBe('');
    await waitFor('the keys in the clear again', () => JSON.parse(readFileSync(join(d.dataDir, 'dek.json'), 'utf8')).DEK);
    await restart(d);
    expect((await d.json('/info')).Swarm.LocalNodeState).toBe('active');
    expect(filesWith(d.dataDir, value)).toEqual([]);
  });
});

describe('autolock in a three-manager cluster', () => {
  test('a locked, restarted manager rejoins the raft after unlock', async () => {
    await using c = Cluster.loopback();
    const { managers, ids } = await c.boot({ managers: 3, workers: 0 });
    const [m1, m2] = managers;
    const out = await m1!.ok('swarm', 'update', '--autolock=true');
    const key = /SWMKEY-1-[A-Za-z0-9+/]+/.exec(out)![0];
    await waitFor('m2 sealed its keys', () => /"Sealed"/.test(readFileSync(join(m2!.dataDir, 'dek.json'), 'utf8')));

    await m2!.stop();
    await m1!.ok('service', 'create', '--name', 'while-away', '--replicas', '1', '--', '/bin/sleep', '3600');
    await m2!.start(false);
    expect((await m2!.json('/info')).Swarm.LocalNodeState).toBe('locked');
    expect((await m2!.cli('node', 'ls')).stderr).toMatch(LOCKED);

    await m2!.ok('swarm', 'unlock', '--key', key);
    // Rejoined: it sees what was written while it was away, and the leader counts it as a voter.
    await waitFor('m2 caught up', async () => {
      const r = await m2!.api('/services');
      return r.ok && ((await r.json()) as any[]).some((s) => s.Spec.Name === 'while-away');
    }, 30_000);
    await waitFor('m2 reachable again', async () => {
      const nodes = await m1!.json('/nodes');
      const self = nodes.find((n: any) => n.ID === ids.get(m2!));
      return self?.ManagerStatus?.Reachability === 'reachable';
    }, 30_000);
  });
});
