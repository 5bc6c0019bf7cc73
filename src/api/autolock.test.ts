import { describe, expect, test } from 'bun:test';
import { InvalidUnlockKeyError } from '../lib/unlock-key.ts';
import type { ApiEnv } from './client-auth.ts';
import { createLockedApp } from './locked.ts';
import { testApi } from './test-helper.ts';

const READER: ApiEnv = { client: { name: 'bob', role: 'read-only', serial: 'bb' } };
const KEY = /^SWMKEY-1-[A-Za-z0-9+/]{43}$/;

describe('autolock through /swarm/update and /swarm/unlockkey', () => {
  test('on makes a key shown only by unlockkey; rotation replaces it; off removes it', async () => {
    const api = testApi();
    await api.init();
    const version = () => api.call('GET', '/swarm').then((r) => r.json.Version.Index as number);
    expect((await api.call('POST', `/swarm/update?version=${await version()}`, { EncryptionConfig: { AutoLockManagers: true } })).status).toBe(200);
    const key = (await api.call('GET', '/swarm/unlockkey')).json.UnlockKey as string;
    expect(key).toMatch(KEY);
    const swarm = await api.call('GET', '/swarm');
    expect(swarm.text).not.toContain(key);
    expect(swarm.json.Spec.EncryptionConfig).toEqual({ AutoLockManagers: true });
    // The docker CLI sends the whole spec back on every update: the key stays as it is.
    const whole = await api.call('POST', `/swarm/update?version=${await version()}`, { ...swarm.json.Spec, CAConfig: {}, Labels: { a: 'b' } });
    expect(whole.text).toBe('');
    expect((await api.call('GET', '/swarm/unlockkey')).json.UnlockKey).toBe(key);

    expect((await api.call('POST', '/swarm/update?rotateManagerUnlockKey=true')).status).toBe(200);
    const rotated = (await api.call('GET', '/swarm/unlockkey')).json.UnlockKey as string;
    expect(rotated).toMatch(KEY);
    expect(rotated).not.toBe(key);

    expect((await api.call('POST', `/swarm/update?version=${await version()}`, { EncryptionConfig: { AutoLockManagers: false } })).status).toBe(200);
    expect((await api.call('GET', '/swarm/unlockkey')).json).toEqual({ UnlockKey: '' });
    const noKey = await api.call('POST', '/swarm/update?rotateManagerUnlockKey=true');
    expect(noKey.status).toBe(400);
    expect(noKey.json.message).toContain('autolock is off');
  });

  test('a read-only client bundle is not shown the key', async () => {
    const api = testApi();
    await api.init();
    const r = await api.app.request('/swarm/unlockkey', {}, READER);
    expect(r.status).toBe(403);
  });
});

describe('the locked API', () => {
  const locked = (unlock: (k: string) => Promise<void> = async () => {}) =>
    createLockedApp({ nodeId: 'n1', version: { Version: 't', ApiVersion: '1.47', Os: 'linux', Arch: 'amd64' }, lockedMessage: 'Swarm is encrypted and needs to be unlocked', unlock });

  test('ping, version and info answer, saying locked; anything else is 503 with the locked message', async () => {
    const app = locked();
    const ping = await app.request('/_ping');
    expect(ping.status).toBe(200);
    expect(ping.headers.get('Swarm')).toBe('locked');
    expect(((await (await app.request('/v1.47/version')).json()) as { ApiVersion: string }).ApiVersion).toBe('1.47');
    expect(((await (await app.request('/info')).json()) as { Swarm: unknown }).Swarm).toMatchObject({ NodeID: 'n1', LocalNodeState: 'locked', ControlAvailable: false });
    for (const [method, path] of [['GET', '/services'], ['POST', '/services/create'], ['GET', '/v1.47/swarm'], ['DELETE', '/nodes/x']] as const) {
      const r = await app.request(path, { method });
      expect({ path, status: r.status }).toEqual({ path, status: 503 });
      expect(((await r.json()) as { message: string }).message).toContain('needs to be unlocked');
    }
  });

  test('unlock hands the key over; a wrong key is 401, no key a 400 naming the field', async () => {
    const seen: string[] = [];
    const app = locked(async (k) => {
      seen.push(k);
      if (k !== 'SWMKEY-1-right') throw new InvalidUnlockKeyError();
    });
    const post = (body: unknown) => app.request('/swarm/unlock', { method: 'POST', body: JSON.stringify(body) });
    expect((await post({ UnlockKey: ' SWMKEY-1-right\n' })).status).toBe(200);
    const wrong = await post({ UnlockKey: 'SWMKEY-1-wrong' });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { message: string }).message).toBe('swarm could not be unlocked: invalid key provided');
    const none = await post({});
    expect(none.status).toBe(400);
    expect(((await none.json()) as { message: string }).message).toContain('UnlockKey');
    expect(seen).toEqual(['SWMKEY-1-right', 'SWMKEY-1-wrong']);
  });
});
