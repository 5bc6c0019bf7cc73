/**
 * Issue 16, `docker swarm ca` with the stock docker CLI against dist/shoal: it prints the root;
 * `--rotate` (a generated root) waits with its own progress until every node converged and prints
 * the new root; `--rotate --ca-cert --ca-key` moves to a given root, `-q` quietly. A manager and a
 * worker on loopback; skipped, naming why, without a docker CLI (it needs no docker daemon).
 */
import { expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster, type Daemon, runDocker, type DockerRun, logsOnFailure } from '../harness/index.ts';

const dockerCli = Bun.which('docker');

function docker(d: Daemon, args: string[], timeoutMs = 120_000): Promise<DockerRun> {
  return runDocker(d, args, { timeoutMs });
}

async function ok(d: Daemon, ...args: string[]): Promise<string> {
  const r = await docker(d, args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.err}${r.out}`);
  return r.out.trim();
}

const lastPem = (s: string) => {
  const all = s.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  return all.at(-1) ?? '';
};

test.skipIf(!dockerCli)('docker swarm ca; --rotate waits until the nodes converged and prints the new root; --rotate --ca-cert --ca-key -q', logsOnFailure(async () => {
  await using cluster = Cluster.loopback();
  const { managers: [m1], workers: [w1], ids } = await cluster.boot({ managers: 1, workers: 1 });
  const root0 = (await m1.json('/swarm')).TLSInfo.TrustRoot as string;
  expect(await ok(m1, 'swarm', 'ca')).toBe(root0.trim());
  expect(await ok(m1, 'info', '--format', '{{.Swarm.Cluster.RootRotationInProgress}}')).toBe('false');

  const rotated = await ok(m1, 'swarm', 'ca', '--rotate');
  const root1 = (await m1.json('/swarm')).TLSInfo.TrustRoot as string;
  expect(root1).not.toBe(root0);
  expect(lastPem(rotated)).toBe(root1.trim());
  expect(await ok(m1, 'swarm', 'ca')).toBe(root1.trim());
  for (const id of [ids.get(m1)!, ids.get(w1)!]) {
    expect(await ok(m1, 'node', 'inspect', id, '--format', '{{.Description.TLSInfo.TrustRoot}}')).toBe(root1.trim());
  }
  expect(await ok(m1, 'node', 'inspect', '--pretty', ids.get(w1)!)).toContain(root1.trim().split('\n')[1]!);

  // A given root: made with openssl, its key beside it.
  const openssl = (...args: string[]) => {
    const p = Bun.spawnSync(['openssl', ...args], { cwd: cluster.dir, stderr: 'pipe' });
    if (p.exitCode !== 0) throw new Error(`openssl ${args.join(' ')}: ${p.stderr.toString()}`);
  };
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'corp.key');
  openssl('req', '-x509', '-new', '-key', 'corp.key', '-subj', '/CN=corp root', '-days', '365', '-out', 'corp.pem', '-addext', 'basicConstraints=critical,CA:true', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const quiet = await ok(m1, 'swarm', 'ca', '--rotate', '--ca-cert', join(cluster.dir, 'corp.pem'), '--ca-key', join(cluster.dir, 'corp.key'), '-q');
  expect(quiet).toBe('');
  const corp = readFileSync(join(cluster.dir, 'corp.pem'), 'utf8').trim();
  expect(await ok(m1, 'swarm', 'ca')).toBe(corp);
  expect(await ok(m1, 'node', 'inspect', ids.get(w1)!, '--format', '{{.Description.TLSInfo.TrustRoot}}')).toBe(corp);
  expect(await ok(m1, 'node', 'ls', '--format', '{{.Status}}')).toBe('Ready\nReady');
  // A later `docker swarm update` sends the spec back with that certificate (no key): no new rotation.
  expect(await ok(m1, 'swarm', 'update', '--task-history-limit', '4')).toBe('Swarm updated.');
  expect(await ok(m1, 'info', '--format', '{{.Swarm.Cluster.RootRotationInProgress}}')).toBe('false');
  expect(await ok(m1, 'swarm', 'ca')).toBe(corp);
}), 240_000);
