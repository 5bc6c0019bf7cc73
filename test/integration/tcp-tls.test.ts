/**
 * The admin API over TCP, as a user meets it: `shoal daemon --listen-tcp` serves it with mutual TLS
 * only; bundles from `shoal ca client-bundle` (through the 0600 socket) work with the shoal CLI and
 * with `docker --tlsverify`; everything else is refused. The docker part is skipped without a docker
 * CLI (it needs no docker daemon).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueClientCert } from '../../src/manager/ca/client-cert.ts';
import { RootCA } from '../../src/manager/ca/index.ts';
import { type CliResult, Cluster, type Daemon, SHOAL, freePort, tlsDaemon, waitFor } from '../harness/index.ts';

const hasDocker = Bun.which('docker') !== null;
let d: Daemon & AsyncDisposable;
let dir: string;
let host: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-bundles-'));
  process.env.SHOAL_TEST_MIN_CERT_EXPIRY = '1s'; // lets a bundle expire within the test
  const started = await tlsDaemon(dir);
  d = started.d;
  host = `tcp://127.0.0.1:${started.tcp}`;
}, 60_000);
afterAll(async () => {
  await d?.[Symbol.asyncDispose]();
  rmSync(dir, { recursive: true, force: true });
  delete process.env.SHOAL_TEST_MIN_CERT_EXPIRY;
});

/** The shoal CLI against the TCP address with the bundle in `bundle`. */
async function overTcp(bundle: string, ...args: string[]): Promise<CliResult> {
  return overTcpTo(host, bundle, ...args);
}

async function overTcpTo(to: string, bundle: string, ...args: string[]): Promise<CliResult> {
  const p = Bun.spawn([SHOAL, ...args], { stdout: 'pipe', stderr: 'pipe', env: { ...process.env, SHOAL_HOST: to, SHOAL_CERT_PATH: join(dir, bundle) } });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

test('the unix socket is 0600 and the bundle key 0600', () => {
  expect(statSync(d.socket).mode & 0o777).toBe(0o600);
  expect(statSync(join(dir, 'alice', 'key.pem')).mode & 0o777).toBe(0o600);
});

describe('the shoal CLI over tcp://', () => {
  test('an admin bundle: reads, writes, join tokens', async () => {
    const ls = await overTcp('alice', 'node', 'ls');
    expect(ls.code).toBe(0);
    expect(ls.stdout).toContain('Leader');
    const tok = await overTcp('alice', '--tlsverify', 'cluster', 'join-token', '-q', 'worker');
    expect(tok.stdout).toMatch(/^SHOAL-1-\w+-\w+\n$/);
    expect((await overTcp('alice', 'service', 'create', '--detach', '--name', 'tcp-svc', '--', '/bin/sleep', '60')).code).toBe(0);
    expect((await overTcp('alice', 'service', 'rm', 'tcp-svc')).code).toBe(0);
  });

  test('a read-only bundle: reads; writes and join tokens refused', async () => {
    expect((await overTcp('bob', 'service', 'ls')).code).toBe(0);
    const w = await overTcp('bob', 'service', 'create', '--name', 'nope', '--', '/bin/true');
    expect(w.code).toBe(1);
    expect(w.stderr).toContain('the client bundle of "bob" has the read-only role: POST /services/create needs an admin bundle');
    const t = await overTcp('bob', 'cluster', 'join-token', 'worker');
    expect(t.code).toBe(1);
    expect(t.stderr).toContain('shown only to admins');
    expect((await overTcp('bob', 'ca', 'client-bundle', '--name', 'x', '--out', join(dir, 'x'))).stderr).toContain('read-only role');
  });

  test('refused: no bundle, a bundle from another CA, plain HTTP', async () => {
    const none = await overTcp('missing', 'node', 'ls');
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('needs a client bundle (mutual TLS)');
    expect(none.stderr).toContain('shoal ca client-bundle');

    // A bundle that looks right (same cluster id, admin) but is signed by another CA.
    const clusterId = (await d.json('/swarm')).ID;
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const forged = await issueClientCert(await RootCA.create(), { name: 'mallory', role: 'admin', clusterId, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string });
    mkdirSync(join(dir, 'mallory'));
    writeFileSync(join(dir, 'mallory', 'ca.pem'), readFileSync(join(dir, 'alice', 'ca.pem')));
    writeFileSync(join(dir, 'mallory', 'cert.pem'), forged.certPem);
    writeFileSync(join(dir, 'mallory', 'key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    const m = await overTcp('mallory', 'node', 'ls');
    expect(m.code).toBe(1);
    expect(m.stderr).toContain('TLS handshake');

    await expect(fetch(`${host.replace('tcp:', 'http:')}/nodes`).then((r) => r.status)).rejects.toThrow();
    expect((await overTcp('alice', '-H', host.replace('tcp:', 'http:'), 'node', 'ls')).stderr).toContain('no plain HTTP');
  });

  test('a revoked bundle is refused, with the reason', async () => {
    await d.ok('ca', 'client-bundle', '--name', 'carol', '--out', join(dir, 'carol'));
    expect((await overTcp('carol', 'node', 'ls')).code).toBe(0);
    expect(await d.ok('ca', 'revoke', 'carol')).toMatch(/^[0-9a-f]{32}\n$/);
    const r = await overTcp('carol', 'node', 'ls');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the client bundle of "carol" \(serial [0-9a-f]+\) was revoked at/);
    expect(await d.ok('ca', 'ls')).toMatch(/carol\s+admin\s+\S+\s+\d{4}-/);
  });

  test('an expired bundle is refused', async () => {
    await d.ok('ca', 'client-bundle', '--name', 'erin', '--expiry', '2s', '--out', join(dir, 'erin'));
    const notAfter = new Date(JSON.parse(await d.ok('ca', 'ls', '--format', 'json')).find((r: { Name: string }) => r.Name === 'erin').NotAfter).getTime();
    const r = await waitFor('erin refused', async () => {
      const res = await overTcp('erin', 'node', 'ls');
      return res.code !== 0 ? res : null;
    }, 20_000, 250);
    expect(Date.now()).toBeGreaterThan(notAfter); // refused for its expiry, not for anything else
    expect(r.stderr).toMatch(/expired|TLS handshake/);
  }, 30_000);
});

describe.skipIf(!hasDocker)('docker --tlsverify -H tcp://', () => {
  async function docker(bundle: string | null, ...args: string[]): Promise<{ code: number; out: string }> {
    const env: Record<string, string> = { ...(process.env as Record<string, string>), DOCKER_CLI_HINTS: 'false', DOCKER_CONFIG: join(dir, 'docker-config') };
    if (bundle) env.DOCKER_CERT_PATH = join(dir, bundle);
    const p = Bun.spawn(['docker', ...(bundle ? ['--tlsverify'] : []), '-H', host, ...args], { stdout: 'pipe', stderr: 'pipe', env });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { code, out: out + err };
  }

  test('version and node ls with an admin bundle; no join token for a read-only one; nothing without one', async () => {
    const v = await docker('alice', 'version');
    expect(v.code).toBe(0);
    expect(v.out).toContain('Server: shoal');
    const ls = await docker('alice', 'node', 'ls');
    expect(ls.code).toBe(0);
    expect(ls.out).toContain('Leader');
    expect((await docker('alice', 'swarm', 'join-token', '-q', 'worker')).out).toMatch(/SHOAL-1-/);
    const ro = await docker('bob', 'swarm', 'join-token', '-q', 'worker');
    expect(ro.out).not.toMatch(/SHOAL-1-/);
    expect((await docker('bob', 'service', 'create', '--name', 'x', 'busybox')).out).toContain('read-only role');
    expect((await docker(null, 'version')).code).not.toBe(0);
  }, 30_000);
});

test('two managers: a bundle made on one works on the other, and a revocation on one is refused by the other', async () => {
  await using fleet = Cluster.loopback();
  const tcp1 = `127.0.0.1:${freePort('127.0.0.1')}`;
  const tcp2 = `127.0.0.2:${freePort('127.0.0.2')}`;
  const m1 = await fleet.add({ init: true, args: ['--listen-tcp', tcp1] });
  const token = (await m1.ok('cluster', 'join-token', '-q', 'manager')).trim();
  const m2 = await fleet.add({ join: [m1.addr, token], args: ['--listen-tcp', tcp2] });
  await waitFor('the TCP API on the joined manager', () => m2.output.includes(`admin API on tcp://${tcp2}`), 30_000);
  await m1.ok('ca', 'client-bundle', '--name', 'frank', '--out', join(dir, 'frank'));
  const ok = await waitFor('frank on the second manager', async () => {
    const r = await overTcpTo(`tcp://${tcp2}`, 'frank', 'node', 'ls');
    return r.code === 0 ? r : null;
  }, 20_000, 250);
  expect(ok.stdout.trim().split('\n')).toHaveLength(3); // the header and both managers
  await m1.ok('ca', 'revoke', 'frank');
  const refused = await waitFor('frank refused by the second manager', async () => {
    const r = await overTcpTo(`tcp://${tcp2}`, 'frank', 'node', 'ls');
    return r.code !== 0 ? r : null;
  }, 20_000, 250);
  expect(refused.stderr).toMatch(/the client bundle of "frank" \(serial [0-9a-f]+\) was revoked at/);
}, 90_000);
