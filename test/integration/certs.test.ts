/**
 * Node certificate expiry and renewal, with dist/shoal on loopback: one manager and one worker in a
 * cluster made with `--cert-expiry 20s` (allowed only through the test-only minimum,
 * SHOAL_TEST_MIN_CERT_EXPIRY). The worker's certificate is renewed at 50–80 % of its validity (seen
 * in GET /nodes/{id} `Description.TLSInfo`), its session stays up through the first certificate's
 * expiry, and a task is still placed on it afterwards; a lifetime changed by `cluster update`
 * applies to the next certificate issued.
 */
import { afterAll, expect, test } from 'bun:test';
import { Cluster, logsOnFailure, waitFor } from '../harness/index.ts';

// The daemons and the CLI get it through the harness (process.env, read at each start).
const before = process.env.SHOAL_TEST_MIN_CERT_EXPIRY;
process.env.SHOAL_TEST_MIN_CERT_EXPIRY = '5s';
afterAll(() => {
  if (before === undefined) delete process.env.SHOAL_TEST_MIN_CERT_EXPIRY;
  else process.env.SHOAL_TEST_MIN_CERT_EXPIRY = before;
});

interface TlsInfo { CertSerial: string; CertNotBefore: string; CertNotAfter: string }

test('a 20 s certificate is renewed at 50–80 % of its life; the worker keeps its session and gets tasks after the first one expired', logsOnFailure(async () => {
  await using cluster = Cluster.loopback();
  const m1 = await cluster.add({ name: 'm1' });
  // Below the test-only minimum: refused, naming the field and the minimum.
  const short = await m1.cli('cluster', 'init', '--managers', '-1', '--cert-expiry', '2s');
  expect(short.code).toBe(1);
  expect(short.stderr).toContain('Spec.CAConfig.NodeCertExpiry: 2s is too short: node certificates must live at least 5s');
  await m1.ok('cluster', 'init', '--managers', '-1', '--cert-expiry', '20s');
  const token = (await m1.ok('cluster', 'join-token', '-q', 'worker')).trim();
  const w1 = await cluster.add({ join: [m1.addr, token], name: 'w1' });
  const idw = (await w1.json<any>('/info')).Swarm.NodeID as string;
  const idm = (await m1.json<any>('/info')).Swarm.NodeID as string;
  const node = (id: string) => m1.json<any>(`/nodes/${id}`);
  const tls = async (id: string) => (await node(id)).Description.TLSInfo as TlsInfo | undefined;

  const first = await waitFor("the worker's certificate on its node", async () => (await tls(idw))?.CertSerial ? tls(idw) : null, 20_000);
  const managerFirst = (await tls(idm))!;
  const notBefore = Date.parse(first.CertNotBefore);
  const notAfter = Date.parse(first.CertNotAfter);
  const life = notAfter - notBefore;
  expect(life).toBeGreaterThanOrEqual(20_000); // 20 s from its making, and a short backdate
  expect(life).toBeLessThan(25_000);
  await waitFor('the worker ready', async () => (await node(idw)).Status.State === 'ready', 20_000);

  // Renewed between 50 % and 80 % of the validity (observed by polling: a little after it happened).
  const renewed = await waitFor("the worker's certificate renewed", async () => {
    const t = await tls(idw);
    return t && t.CertSerial !== first.CertSerial ? { t, at: Date.now() } : null;
  }, 30_000, 100);
  expect(renewed.at).toBeGreaterThanOrEqual(notBefore + 0.5 * life);
  expect(renewed.at).toBeLessThanOrEqual(notBefore + 0.8 * life + 3_000); // slack for the poll on a busy machine
  expect(Date.parse(renewed.t.CertNotAfter)).toBeGreaterThan(notAfter);

  // Past the first certificate's expiry, the worker stays ready throughout (its session is not lost).
  const states = new Set<string>();
  await waitFor("the worker's first certificate to have expired", async () => {
    states.add((await node(idw)).Status.State);
    return Date.now() > notAfter + 2_000;
  }, 30_000, 200);
  expect([...states]).toEqual(['ready']);
  await m1.ok('service', 'create', '--detach', '--name', 'after-expiry', '--constraint', `node.id==${idw}`, '--', '/bin/sleep', '3600');
  await waitFor('a task running on the worker', async () => (await m1.running('after-expiry')).some((t) => t.NodeID === idw), 20_000);
  // The manager renewed its own certificate as well.
  expect((await tls(idm))!.CertSerial).not.toBe(managerFirst.CertSerial);
  expect(w1.output).toContain('certificate renewed');

  // A new lifetime applies to the certificates issued from then on: the worker's next renewal.
  await m1.ok('cluster', 'update', '--cert-expiry', '30s');
  expect((await m1.json<any>('/swarm')).Spec.CAConfig.NodeCertExpiry).toBe(30e9);
  const current = (await tls(idw))!.CertSerial;
  const longer = await waitFor('a renewal with the new lifetime', async () => {
    const t = await tls(idw);
    return t && t.CertSerial !== current && Date.parse(t.CertNotAfter) - Date.parse(t.CertNotBefore) >= 30_000 ? t : null;
  }, 30_000, 200);
  expect(Date.parse(longer.CertNotAfter) - Date.parse(longer.CertNotBefore)).toBeLessThan(35_000);
}), 150_000);
