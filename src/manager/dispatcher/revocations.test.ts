import { afterEach, describe, expect, test } from 'bun:test';
import { ManualClock } from '../../../plugins/mock/clock.ts';
import { encodeFrame, FrameDecoder, FrameError } from '../../lib/frames.ts';
import { memoryStore, type MemoryStore } from '../../store/index.ts';
import type { ClientCertRecord, Cluster } from '../../types/objects.ts';
import { Dispatcher } from './dispatcher.ts';
import { MAX_REVOCATIONS, SESSION_FRAMES } from './protocol.ts';
import { revocationTable } from './tables.ts';
import { addNode, RawWorker, waitFor } from './testkit.ts';

let store: MemoryStore;
let dispatcher: Dispatcher | null = null;

afterEach(async () => { await dispatcher?.stop(); dispatcher = null; });

const record = (serial: string, name: string, revokedAt?: string): ClientCertRecord => ({
  Serial: serial, Name: name, Role: 'admin', IssuedAt: '2026-01-01T00:00:00Z', NotAfter: '2099-01-01T00:00:00Z', ...(revokedAt ? { RevokedAt: revokedAt } : {}),
});

async function setup(records: ClientCertRecord[]): Promise<void> {
  store = memoryStore();
  await store.update((tx) => tx.create('clusters', {
    ID: 'c1', Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: {} as Cluster['Spec'], JoinTokens: { Worker: '', Manager: '' }, ClientCerts: records,
  } as Cluster));
  dispatcher = new Dispatcher({ store, clock: new ManualClock(1_000_000), random: () => 0, heartbeatPeriodMs: 1000 });
  dispatcher.start();
}

async function changeCluster(fn: (c: Cluster) => Cluster): Promise<void> {
  await store.update((tx) => tx.update('clusters', fn(tx.get('clusters', 'c1')!)));
}

describe('the revocations frame', () => {
  test('the table holds the revoked records only, by serial', () => {
    const c = { ClientCerts: [record('bb', 'bob', '2026-02-01T00:00:00Z'), record('cc', 'carol'), record('aa', 'alice', '2026-03-01T00:00:00Z')] } as Cluster;
    expect(revocationTable(c)).toEqual({ revoked: [{ serial: 'aa', name: 'alice', at: '2026-03-01T00:00:00Z' }, { serial: 'bb', name: 'bob', at: '2026-02-01T00:00:00Z' }] });
    expect(revocationTable(undefined)).toEqual({ revoked: [] });
  });

  test('sent at registration to a worker that asks, again when a revocation changes it, never to one that does not ask', async () => {
    await setup([record('aa', 'alice'), record('bb', 'bob', '2026-02-01T00:00:00Z')]);
    const asks = new RawWorker(dispatcher!);
    const older = new RawWorker(dispatcher!);
    await asks.register(await addNode(store), ['endpoints', 'revocations']);
    await older.register(await addNode(store), ['endpoints']);
    await waitFor(() => asks.of('revocations').length === 1, 'the first list');
    expect(asks.of('revocations')[0]!.revoked.map((r) => r.serial)).toEqual(['bb']);

    // A change to the cluster that leaves the list as it was sends nothing.
    await changeCluster((c) => ({ ...c, Spec: { ...c.Spec, Labels: { x: 'y' } } }));
    await changeCluster((c) => ({ ...c, ClientCerts: c.ClientCerts!.map((r) => (r.Serial === 'aa' ? { ...r, RevokedAt: '2026-04-01T00:00:00Z' } : r)) }));
    await waitFor(() => asks.of('revocations').length === 2, 'the list after the revocation');
    expect(asks.of('revocations')[1]!.revoked).toEqual([
      { serial: 'aa', name: 'alice', at: '2026-04-01T00:00:00Z' }, { serial: 'bb', name: 'bob', at: '2026-02-01T00:00:00Z' },
    ]);
    expect(older.of('revocations')).toEqual([]);
    expect(older.of('endpoints').length).toBeGreaterThanOrEqual(1);
  });

  test('versioned and bounded: a malformed or oversized list is refused by the decoder, an oversized one not sent', () => {
    const decoder = () => new FrameDecoder(SESSION_FRAMES);
    const ok = encodeFrame(SESSION_FRAMES, { t: 'revocations', b: { revoked: [{ serial: 'aa', name: 'a', at: 'now' }] } });
    expect(decoder().push(ok)).toEqual([{ t: 'revocations', b: { revoked: [{ serial: 'aa', name: 'a', at: 'now' }] } }]);
    const bad = encodeFrame(SESSION_FRAMES, { t: 'revocations', b: { revoked: [{ serial: 7, name: 'a', at: 'now' }] } } as never);
    expect(() => decoder().push(bad)).toThrow(/serial: not a string/);
    const many = Array.from({ length: MAX_REVOCATIONS + 1 }, (_, i) => ({ serial: i.toString(16), name: 'n', at: 't' }));
    expect(() => decoder().push(encodeFrame(SESSION_FRAMES, { t: 'revocations', b: { revoked: many } }))).toThrow(/more than 4096 items/);
    // The dispatcher never cuts a list short (a revocation left out would be accepted): it sends none.
    expect(revocationTable({ ClientCerts: many.map((r) => record(r.serial, 'n', 'now')) } as Cluster)).toBeNull();
    const huge = Array.from({ length: MAX_REVOCATIONS }, (_, i) => ({ serial: i.toString(16).padStart(128, '0'), name: 'n'.repeat(256), at: 't' }));
    expect(() => encodeFrame(SESSION_FRAMES, { t: 'revocations', b: { revoked: huge } })).toThrow(FrameError);
    const v2 = encodeFrame({ revocations: { ...SESSION_FRAMES.revocations, version: 2 } }, { t: 'revocations', b: { revoked: [] } });
    expect(() => decoder().push(v2)).toThrow(/version/);
  });
});
