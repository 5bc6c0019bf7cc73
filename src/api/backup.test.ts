import { expect, test } from 'bun:test';
import { encodeBackup, readBackupHeader } from '../backup/format.ts';
import type { ApiEnv } from './client-auth.ts';
import { testApi } from './test-helper.ts';

const READER: ApiEnv = { client: { name: 'bob', role: 'read-only', serial: 'bb' } };

function withBackup() {
  const api = testApi();
  let calls = 0;
  api.deps.backup = async () => {
    calls++;
    return encodeBackup({
      header: { ClusterID: 'c1', RaftIndex: 9, RaftTerm: 2, NodeID: 'n1', ShoalVersion: 't', CreatedAt: 'now', Objects: {} },
      snapshot: new Uint8Array([1, 2, 3]),
    });
  };
  return { api, calls: () => calls };
}

test('POST /swarm/backup: the file with its index and term; a read-only bundle is refused before any backup is taken', async () => {
  const { api, calls } = withBackup();
  expect((await api.call('POST', '/swarm/backup')).status).toBe(503); // no cluster yet
  await api.init();
  const res = await api.app.request('/v1.47/swarm/backup', { method: 'POST' });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/octet-stream');
  expect(res.headers.get('x-shoal-backup-index')).toBe('9');
  expect(res.headers.get('x-shoal-backup-term')).toBe('2');
  expect(readBackupHeader(new Uint8Array(await res.arrayBuffer()), 'f').ClusterID).toBe('c1');
  expect(calls()).toBe(1);
  const refused = await api.app.request('/swarm/backup', { method: 'POST' }, READER);
  expect(refused.status).toBe(403);
  expect(await refused.text()).toContain('read-only role: POST /swarm/backup needs an admin bundle');
  expect(calls()).toBe(1);
});

test('the unlock key stays internal: GET /swarm never shows it', async () => {
  const { api } = withBackup();
  await api.init();
  const store = api.deps.store;
  const c = store.list('clusters')[0]!;
  await store.update((tx) => tx.update('clusters', { ...c, UnlockKey: 'SWMKEY-1-secret' }));
  const r = await api.call('GET', '/swarm');
  expect(r.status).toBe(200);
  expect(r.text).not.toContain('SWMKEY');
  expect(r.json.UnlockKey).toBeUndefined();
});
