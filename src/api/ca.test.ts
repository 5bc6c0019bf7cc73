import { describe, expect, test } from 'bun:test';
import { generateKeyPairSync } from 'node:crypto';
import { RootCA } from '../manager/ca/index.ts';
import { readClientCert } from '../manager/ca/client-cert.ts';
import type { ApiEnv } from './client-auth.ts';
import { findRecords } from './ca.ts';
import { testApi } from './test-helper.ts';

const publicKey = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
const ADMIN: ApiEnv = { client: { name: 'alice', role: 'admin', serial: 'aa' } };
const READER: ApiEnv = { client: { name: 'bob', role: 'read-only', serial: 'bb' } };

async function apiWithCA() {
  const api = testApi();
  await api.init();
  const ca = await RootCA.create();
  const { certPem, keyPem } = await ca.toPem();
  const { store } = api.deps;
  const c = store.list('clusters')[0]!;
  await store.update((tx) => tx.update('clusters', { ...c, RootCA: { CACert: certPem, CAKey: keyPem, CACertHash: ca.trust.digest }, JoinTokens: { Worker: 'SHOAL-w', Manager: 'SHOAL-m' } }));
  const call = async (method: string, path: string, body?: unknown, env?: ApiEnv) => {
    const res = await api.app.request(path, { method, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) }, env);
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  };
  return { api, ca, call, clusterId: c.ID };
}

describe('client bundles', () => {
  test('issued for a public key, recorded, listed, revoked by name; every unexpired record kept', async () => {
    const { ca, call, clusterId } = await apiWithCA();
    const r = await call('POST', '/v1.47/ca/client-certs', { Name: 'alice', Role: 'read-only', Expiry: 3600e9, PublicKey: publicKey() });
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({ Name: 'alice', Role: 'read-only', CACert: ca.trust.pem });
    expect(readClientCert(r.json.Certificate, { clusterId })).toMatchObject({ name: 'alice', role: 'read-only', serial: r.json.Serial });
    expect(Date.parse(r.json.NotAfter) - Date.now()).toBeLessThanOrEqual(3600e3);
    const second = await call('POST', '/ca/client-certs', { Name: 'carol', PublicKey: publicKey() });
    expect(second.json.Role).toBe('admin');

    const list = await call('GET', '/ca/client-certs');
    expect(list.json.map((x: { Name: string }) => x.Name)).toEqual(['alice', 'carol']);
    const revoked = await call('POST', '/ca/client-certs/alice/revoke');
    expect(revoked.json).toEqual({ Revoked: [r.json.Serial] });
    const after = (await call('GET', '/ca/client-certs')).json;
    expect(after[0].RevokedAt).toBeString();
    expect(after[1].RevokedAt).toBeUndefined();
    expect((await call('POST', '/ca/client-certs/alice/revoke')).status).toBe(404); // nothing unrevoked of that name
    expect((await call('POST', `/ca/client-certs/${second.json.Serial.slice(0, 10)}/revoke`)).json).toEqual({ Revoked: [second.json.Serial] });
  });

  test('bad requests name the field', async () => {
    const { call } = await apiWithCA();
    expect((await call('POST', '/ca/client-certs', { Name: 'a', PublicKey: publicKey(), Role: 'root' })).json.message).toStartWith('Role:');
    expect((await call('POST', '/ca/client-certs', { Name: 'a', PublicKey: publicKey(), Expiry: 5e9 })).json.message).toBe('Expiry: 5s is too short: a client bundle lives at least 1m');
    expect(await call('POST', '/ca/client-certs', { Name: 'a b', PublicKey: publicKey() })).toMatchObject({ status: 400, json: { message: expect.stringMatching(/^name "a b": expected/) } });
    expect(await call('POST', '/ca/client-certs', { Name: 'a', PublicKey: 'x' })).toMatchObject({ status: 400, json: { message: expect.stringMatching(/^PublicKey: expected a PEM/) } });
    expect((await call('POST', '/ca/client-certs', { Name: 'a' })).json.message).toStartWith('PublicKey:');
  });

  test('findRecords: a serial prefix must be unique; a name finds only unrevoked records', () => {
    const rec = (Serial: string, Name: string, RevokedAt?: string) => ({ Serial, Name, Role: 'admin' as const, IssuedAt: '', NotAfter: '', ...(RevokedAt ? { RevokedAt } : {}) });
    const records = [rec('abcdef0011', 'x'), rec('abcdef0022', 'x', 'then'), rec('99999999', 'y')];
    expect(() => findRecords(records, 'abcdef00')).toThrow('is the start of 2 serials');
    expect(findRecords(records, 'ABCDEF0022').map((r) => r.Serial)).toEqual(['abcdef0022']);
    expect(findRecords(records, 'x').map((r) => r.Serial)).toEqual(['abcdef0011']);
  });
});

describe('roles', () => {
  test('a read-only bundle reads but writes nothing, and sees no join tokens', async () => {
    const { call } = await apiWithCA();
    expect((await call('GET', '/nodes', undefined, READER)).status).toBe(200);
    const w = await call('POST', '/services/create', { Name: 'x' }, READER);
    expect(w).toEqual({ status: 403, json: { message: 'the client bundle of "bob" has the read-only role: POST /services/create needs an admin bundle' } });
    expect((await call('POST', '/ca/client-certs', { Name: 'z', PublicKey: publicKey() }, READER)).status).toBe(403);
    expect((await call('DELETE', '/nodes/x', undefined, READER)).status).toBe(403);
    expect((await call('GET', '/swarm', undefined, READER)).json.JoinTokens).toEqual({ Worker: '', Manager: '' });
  });

  test('an admin bundle and the unix socket (no client) see the tokens; GET /swarm never shows the bundles', async () => {
    const { call } = await apiWithCA();
    await call('POST', '/ca/client-certs', { Name: 'z', PublicKey: publicKey() }, ADMIN);
    for (const env of [ADMIN, undefined]) {
      const s = (await call('GET', '/swarm', undefined, env)).json;
      expect(s.JoinTokens).toEqual({ Worker: 'SHOAL-w', Manager: 'SHOAL-m' });
      expect(s.ClientCerts).toBeUndefined();
      expect(s.RootCA).toBeUndefined();
    }
  });
});
