/**
 * Root CA rotation without downtime (issue 15), with dist/shoal on loopback: three managers (each
 * also a worker) run a service while `shoal cluster ca --rotate` runs; the cluster keeps committing
 * (a service update) and the service's tasks keep running throughout. Afterwards every node's
 * certificate comes from the new root and it trusts the new root alone, the join tokens name the
 * new root (an old token is refused), and a node that joins then works. Then bad rotation input is
 * refused naming the field, with the cluster untouched.
 */
import { expect, test } from 'bun:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RootCA } from '../../src/manager/ca/index.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Cluster, logsOnFailure, SHOAL, tlsDaemon, waitFor } from '../harness/index.ts';

const tlsOf = (n: any) => n.Description.TLSInfo ?? {};

test('shoal cluster ca --rotate: no task restarts, raft keeps committing, every node moves to the new root; old tokens refused, new ones work', logsOnFailure(async () => {
  await using cluster = Cluster.loopback();
  const { managers: [m1, m2, m3], ids } = await cluster.boot({ managers: 3, workers: 0 });
  // Nodes hear of a rotation with their heartbeat acks and renew at once. Below, m3 is paused
  // (SIGSTOP) while the rotation starts, so the rotation cannot end before m3 renews: it is seen
  // under way while the cluster commits. A paused node must not be marked down meanwhile (a down
  // node would not hold the rotation back): with a 5 s heartbeat it has 15 s, counted from its
  // last heartbeat under that period. m3 is restarted so that its session starts under it.
  await m1.ok('cluster', 'update', '--dispatcher-heartbeat', '5s');
  await m3.restart();
  await cluster.waitReady(3, 3, 30_000, m1);
  await m1.ok('service', 'create', '--detach', '--name', 'steady', '--replicas', '3', '--', '/bin/sleep', '3600');
  // One task per node: m3's running proves its new session is registered.
  const before = await waitFor('3 tasks of steady running, one on m3', async () => {
    const r = await m1.running('steady');
    return r.length === 3 && r.some((t) => t.NodeID === ids.get(m3)) ? r.map((t) => t.ID).sort() : null;
  }, 30_000);
  const swarm0 = await m1.json('/swarm');
  const oldRoot = swarm0.TLSInfo.TrustRoot as string;
  const oldTokens = { ...cluster.tokens };
  expect(swarm0.RootRotationInProgress).toBe(false);
  // The docker CLI's fields: the issuer as base64 DER, the same as the nodes' certificates show.
  for (const n of await m1.json<any[]>('/nodes')) expect(tlsOf(n).CertIssuerPublicKey).toBe(swarm0.TLSInfo.CertIssuerPublicKey);

  m3.signal('SIGSTOP');
  let rotation: ReturnType<typeof m2.cli>;
  try {
    rotation = m2.cli('cluster', 'ca', '--rotate', '--timeout', '150s');
    await waitFor('the rotation under way', async () => (await m1.json('/swarm')).RootRotationInProgress === true, 20_000, 20);
    // While it runs: the cluster commits (a scale up goes through raft, scheduler, dispatcher).
    await m1.ok('service', 'scale', '--detach', 'steady=4');
    expect((await m1.json('/swarm')).RootRotationInProgress).toBe(true);
  } finally {
    m3.signal('SIGCONT');
  }
  const done = await rotation!;
  expect(done.code).toBe(0);
  expect(done.stdout).toContain('rotated TLS certificates: 3/3 nodes; rotated CA certificates: 3/3 nodes');

  const swarm1 = await m1.json('/swarm');
  const newRoot = swarm1.TLSInfo.TrustRoot as string;
  expect(newRoot).not.toBe(oldRoot);
  expect(done.stdout.trim().endsWith(newRoot.trim())).toBe(true);
  expect(swarm1.RootRotationInProgress).toBe(false);
  expect(swarm1.Spec.CAConfig.ForceRotate).toBe(1);
  expect((await m3.ok('cluster', 'ca')).trim()).toBe(newRoot.trim());
  const nodes = await m1.json<any[]>('/nodes');
  expect(nodes).toHaveLength(3);
  for (const n of nodes) {
    expect(n.Status.State).toBe('ready');
    expect(tlsOf(n).CertIssuerPublicKey).toBe(swarm1.TLSInfo.CertIssuerPublicKey);
    expect(tlsOf(n).TrustRoot).toBe(newRoot);
  }
  // No task was restarted: the three first are still the ones running, and the scale-up ran.
  await waitFor('4 tasks of steady running', async () => (await m1.running('steady')).length === 4, 30_000);
  const after = (await m1.running('steady')).map((t) => t.ID);
  for (const id of before) expect(after).toContain(id);
  // The managers still form one raft group: each sees the same leader and all reachable.
  await cluster.waitReady(3, 3, 20_000, m3);

  // The tokens changed their digest; the secrets did not.
  const tokens = await cluster.tokensOf(m1);
  expect(tokens.worker).not.toBe(oldTokens.worker);
  expect(tokens.worker.split('-').at(-1)).toBe(oldTokens.worker.split('-').at(-1));
  const refused = cluster.add({ join: [m1.addr, oldTokens.worker], name: 'old-token' });
  await expect(refused).rejects.toThrow(/another root CA/);
  const w1 = await cluster.add({ join: [m1.addr, tokens.worker], name: 'w1' });
  const [w1Id] = [...(await cluster.nodeIds([w1])).values()];
  await waitFor('the new worker ready', async () => (await m1.json(`/nodes/${w1Id}`)).Status.State === 'ready', 30_000);
  expect(tlsOf(await m1.json(`/nodes/${w1Id}`)).CertIssuerPublicKey).toBe(swarm1.TLSInfo.CertIssuerPublicKey);
  await m1.ok('service', 'create', '--detach', '--name', 'on-new', '--constraint', `node.id==${w1Id}`, '--', '/bin/sleep', '3600');
  await waitFor('a task on the node that joined after the rotation', async () => (await m1.running('on-new')).length === 1, 30_000);
}), 300_000);

test('bad rotation input: key of another certificate, expired root, key without certificate, unreachable external CA; the cluster is untouched', logsOnFailure(async () => {
  await using cluster = Cluster.loopback();
  const m1 = await cluster.add({ init: true, name: 'm1' });
  await m1.ok('cluster', 'join-token', '-q', 'worker'); // the CA is made when first needed
  const dir = cluster.dir;
  const openssl = (...args: string[]) => {
    const p = Bun.spawnSync(['openssl', ...args], { cwd: dir, stderr: 'pipe' });
    if (p.exitCode !== 0) throw new Error(`openssl ${args.join(' ')}: ${p.stderr.toString()}`);
  };
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'a.key');
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'b.key');
  openssl('req', '-x509', '-new', '-key', 'a.key', '-subj', '/CN=root a', '-days', '30', '-out', 'a.pem', '-addext', 'basicConstraints=critical,CA:true');
  // Expired: valid for one day, a year ago.
  const old = await (await RootCA.create({ now: Date.now() - 365 * 86400e3, lifetimeMs: 86400e3 })).toPem();
  writeFileSync(join(dir, 'old.pem'), old.certPem);
  writeFileSync(join(dir, 'old.key'), old.keyPem);
  const before = await m1.json('/swarm');

  const mismatch = await m1.cli('cluster', 'ca', '--rotate', '--ca-cert', join(dir, 'a.pem'), '--ca-key', join(dir, 'b.key'));
  expect(mismatch.code).toBe(1);
  expect(mismatch.stderr).toContain('Spec.CAConfig.SigningCAKey does not belong to Spec.CAConfig.SigningCACert');
  const expired = await m1.cli('cluster', 'ca', '--rotate', '--ca-cert', join(dir, 'old.pem'), '--ca-key', join(dir, 'old.key'));
  expect(expired.code).toBe(1);
  expect(expired.stderr).toMatch(/Spec.CAConfig.SigningCACert is valid from .* not now/);
  // Through the API as the docker CLI would send it: a key with no certificate.
  const raw = await m1.api(`/swarm/update?version=${before.Version.Index}`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...before.Spec, CAConfig: { ...before.Spec.CAConfig, SigningCAKey: '-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n' } }),
  });
  expect(raw.status).toBe(400);
  expect(await raw.text()).toContain('Spec.CAConfig.SigningCAKey: given without Spec.CAConfig.SigningCACert');
  const badUrl = await m1.cli('cluster', 'ca', '--rotate', '--ca-cert', join(dir, 'a.pem'), '--external-ca', 'protocol=acme,url=http://127.0.0.1:1');
  expect(badUrl.code).toBe(1);
  expect(badUrl.stderr).toContain('protocol "acme": only cfssl is supported');
  const proto = await m1.api(`/swarm/update?version=${before.Version.Index}`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ CAConfig: { ExternalCAs: [{ Protocol: 'acme', URL: 'http://127.0.0.1:1' }] } }),
  });
  expect(proto.status).toBe(400);
  expect(((await proto.json()) as { message: string }).message).toBe('Spec.CAConfig.ExternalCAs[0].Protocol: "acme" is not supported; only cfssl is');
  // A root only an external CA can sign for, whose server does not answer: 503, naming the field.
  const unreachable = await m1.cli('cluster', 'ca', '--rotate', '--ca-cert', join(dir, 'a.pem'), '--external-ca', 'protocol=cfssl,url=http://127.0.0.1:1');
  expect(unreachable.code).toBe(1);
  expect(unreachable.stderr).toContain('Spec.CAConfig.ExternalCAs[0].URL: the external CA http://127.0.0.1:1 is unreachable');

  const after = await m1.json('/swarm');
  expect(after.TLSInfo.TrustRoot).toBe(before.TLSInfo.TrustRoot);
  expect(after.RootRotationInProgress).toBe(false);
  expect(after.JoinTokens).toEqual(before.JoinTokens);
  expect(after.Version.Index).toBe(before.Version.Index);
}), 60_000);

test('the admin API over TCP: a bundle of the old root is refused once the rotation ended; one made after works', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-rot-tcp-'));
  const { d, tcp } = await tlsDaemon(dir);
  try {
    const over = async (bundle: string, ...args: string[]) => {
      const p = Bun.spawn([SHOAL, ...args], { stdout: 'pipe', stderr: 'pipe', env: { ...process.env, SHOAL_HOST: `tcp://127.0.0.1:${tcp}`, SHOAL_CERT_PATH: join(dir, bundle) } });
      const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      return { code, stdout, stderr };
    };
    expect((await over('alice', 'node', 'ls')).code).toBe(0);
    await d.ok('cluster', 'ca', '--rotate', '-q');
    const newRoot = (await d.json('/swarm')).TLSInfo.TrustRoot as string;
    // The listener moves to the new root just after the rotation ended (it watches the store).
    await waitFor('the old bundle refused', async () => (await over('alice', 'node', 'ls')).code !== 0, 20_000);
    await d.ok('ca', 'client-bundle', '--name', 'carol', '--out', join(dir, 'carol'));
    expect((await Bun.file(join(dir, 'carol', 'ca.pem')).text()).trim()).toBe(newRoot.trim());
    const carol = await over('carol', 'node', 'ls');
    expect(carol.stderr).toBe('');
    expect(carol.code).toBe(0);
  } finally {
    await d[Symbol.asyncDispose]();
    rmSync(dir, { recursive: true, force: true });
  }
}, 90_000);
