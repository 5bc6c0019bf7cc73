import { describe, expect, test } from 'bun:test';
import { UnavailableError } from '../lib/errors.ts';
import { nodeCertExpiryProblem } from '../manager/ca/expiry.ts';
import { INFO_READ_BOUND_MS } from './system.ts';
import { testApi } from './test-helper.ts';

describe('before a cluster exists', () => {
  test('cluster-wide routes answer 503 naming "shoal cluster init"; ping, version and info work', async () => {
    const api = testApi();
    for (const p of ['/swarm', '/services', '/services/x', '/tasks', '/tasks/x', '/nodes', '/nodes/x']) {
      const r = await api.call('GET', p);
      expect({ p, status: r.status }).toEqual({ p, status: 503 });
      expect(r.json.message).toContain('shoal cluster init');
    }
    expect((await api.call('POST', '/services/create', { Name: 'x' })).status).toBe(503);
    const ping = await api.app.request('/_ping');
    expect(await ping.text()).toBe('OK');
    expect(ping.headers.get('API-Version')).toBe('1.47');
    expect((await api.app.request('/_ping', { method: 'HEAD' })).status).toBe(200);
    expect((await api.call('GET', '/v1.47/version')).json.ApiVersion).toBe('1.47');
    const info = (await api.call('GET', '/info')).json;
    expect(info.Swarm.LocalNodeState).toBe('inactive');
    expect(info.Swarm.ControlAvailable).toBe(false);
  });

  test('init once; a second init is refused; /swarm and /info after', async () => {
    const api = testApi();
    const r = await api.call('POST', '/swarm/init', { ListenAddr: '0.0.0.0:2377', ForceNewCluster: false });
    expect(r.status).toBe(200);
    expect(typeof r.json).toBe('string');
    expect((await api.call('POST', '/swarm/init', '')).status).toBe(409);
    expect((await api.call('POST', '/swarm/init', '{')).status).toBe(400);
    const swarm = (await api.call('GET', '/swarm')).json;
    expect(swarm.ID).toBeTruthy();
    expect(swarm.JoinTokens.Worker).toBeTruthy();
    const info = (await api.call('GET', '/info')).json;
    expect(info.Swarm).toMatchObject({ NodeID: r.json, LocalNodeState: 'active', ControlAvailable: true, Nodes: 1, Managers: 1 });
    expect(info.Swarm.Cluster.ID).toBe(swarm.ID);
    expect(info.Runtimes.process.Healthy).toBe(true);
  });

  test('/info without a leader answers from local state, with the reason in Swarm.Error', async () => {
    const api = testApi();
    const id = await api.init();
    api.deps.localView = () => ({ nodeAddr: '10.0.0.7', managers: [{ NodeID: 'm2', Addr: '10.0.0.8:4242' }] });
    api.deps.store.sync = async () => {
      throw new UnavailableError('no raft leader is known');
    };
    const r = await api.call('GET', '/info');
    expect(r.status).toBe(200);
    expect(r.json.Swarm).toMatchObject({ NodeID: id, LocalNodeState: 'active', ControlAvailable: true, Nodes: 1, Managers: 1 });
    expect(r.json.Swarm.Error).toContain('no raft leader is known');
    expect(r.json.Swarm.Cluster.ID).toBeTruthy();
    // A manager that has just joined: its store holds nothing yet, it knows itself and its managers.
    const joined = testApi();
    joined.deps.nodeId = () => 'n-joined';
    joined.deps.localView = () => ({ nodeAddr: '10.0.0.9', managers: [{ NodeID: 'm1', Addr: '10.0.0.1:4242' }] });
    // A read no leader answers: it ends only when its signal aborts (as the raft host's does).
    joined.deps.store.sync = (signal) => new Promise((_, reject) => signal?.addEventListener('abort', () => reject(new UnavailableError('read timed out'))));
    const t0 = Date.now();
    const j = (await joined.call('GET', '/info')).json;
    expect(Date.now() - t0).toBeLessThan(INFO_READ_BOUND_MS + 1_000);
    expect(j.Swarm).toMatchObject({ NodeID: 'n-joined', NodeAddr: '10.0.0.9', LocalNodeState: 'active', ControlAvailable: true, RemoteManagers: [{ NodeID: 'm1', Addr: '10.0.0.1:4242' }] });
    expect((await joined.app.request('/_ping')).headers.get('Swarm')).toBe('active/manager');
  });

  test('init with Spec.Managers: bad values refused with the field named', async () => {
    const api = testApi();
    const bad = await api.call('POST', '/swarm/init', { Spec: { Managers: { Desired: 'three' } } });
    expect(bad.status).toBe(400);
    expect(bad.json.message).toContain('Spec.Managers.Desired');
    expect((await api.call('POST', '/swarm/init', { Spec: { Managers: { Grace: 1 } } })).json.message).toContain('"Grace"');
    expect((await api.call('POST', '/swarm/init', { Spec: { Managers: { Desired: 5, LostGracePeriod: 2e9, FailureDomainLabel: 'zone' } } })).status).toBe(200);
  });

  test('swarm update: Spec.Managers and CAConfig.NodeCertExpiry after init, checked field by field, fields left out kept', async () => {
    const api = testApi();
    await api.call('POST', '/swarm/init', { Spec: { Managers: { Desired: -1, LostGracePeriod: 2e9 } } });
    const swarm = async () => (await api.call('GET', '/swarm')).json;
    const s0 = await swarm();
    expect(s0.Spec.Managers).toEqual({ Desired: -1, LostGracePeriod: 2e9 });
    // Back to the automatic count after roles were set by hand; the grace period is kept.
    const up = await api.call('POST', `/swarm/update?version=${s0.Version.Index}`, { Managers: { Desired: 0 } });
    expect(up.status).toBe(200);
    const s1 = await swarm();
    expect(s1.Spec.Managers).toEqual({ Desired: 0, LostGracePeriod: 2e9 });
    expect(s1.Version.Index).toBeGreaterThan(s0.Version.Index);
    // A stale version is a 409; no version a 400.
    expect((await api.call('POST', `/swarm/update?version=${s0.Version.Index}`, { Managers: { Desired: 3 } })).status).toBe(409);
    expect((await api.call('POST', '/swarm/update', { Managers: { Desired: 3 } })).json.message).toContain('version');
    const refused = async (spec: unknown) => {
      const r = await api.call('POST', `/swarm/update?version=${(await swarm()).Version.Index}`, spec);
      expect(r.status).toBe(400);
      return r.json.message as string;
    };
    expect(await refused({ Managers: { Desired: 4 } })).toContain('Spec.Managers.Desired: 4 managers: must be odd');
    expect(await refused({ Managers: { Desired: 9 } })).toContain('Spec.Managers.Desired: 9 managers: at most 7');
    expect(await refused({ Managers: { Desired: -2 } })).toContain('Spec.Managers.Desired');
    expect(await refused({ Managers: { LostGracePeriod: -1 } })).toContain('Spec.Managers.LostGracePeriod');
    expect(await refused({ Managers: { FailureDomainLabel: '' } })).toContain('Spec.Managers.FailureDomainLabel');
    expect(await refused({ Managers: { Grace: 1 } })).toContain('"Grace"');
    expect(await refused({ CAConfig: { NodeCertExpiry: 60e9 } })).toContain('Spec.CAConfig.NodeCertExpiry: 1m is too short: node certificates must live at least 1h');
    expect(await refused({ CAConfig: { NodeCertExpiry: 'long' } })).toContain('Spec.CAConfig.NodeCertExpiry: expected a duration in nanoseconds');
    expect(await refused({ Name: 'other' })).toContain('Spec.Name');
    expect(await refused({ Raft: { ElectionTick: 9999 } })).toContain('Spec.Raft.ElectionTick');
    expect(await refused({ Raft: { ElectionTick: 4, HeartbeatTick: 2 } })).toContain('Spec.Raft.ElectionTick: must be more than twice Spec.Raft.HeartbeatTick');
    expect(await refused({ Raft: { HeartbeatTick: 1.5 } })).toContain('Spec.Raft.HeartbeatTick');
    // The raft timing can change: both ticks, checked together; 0 leaves one as it is.
    const r1 = await api.call('POST', `/swarm/update?version=${(await swarm()).Version.Index}`, { Raft: { ElectionTick: 60, HeartbeatTick: 0 } });
    expect(r1.status).toBe(200);
    expect((await swarm()).Spec.Raft).toMatchObject({ ElectionTick: 60 });
    expect((await swarm()).Spec.Managers).toEqual({ Desired: 0, LostGracePeriod: 2e9 });
    // Docker's whole spec, as the docker CLI sends it back with one change: unknown parts ignored.
    const s2 = await swarm();
    const whole = { ...s2.Spec, CAConfig: { NodeCertExpiry: 2 * 3600e9, ExternalCAs: [] }, EncryptionConfig: { AutoLockManagers: false }, TaskDefaults: {} };
    delete whole.Managers;
    expect((await api.call('POST', `/swarm/update?version=${s2.Version.Index}`, whole)).status).toBe(200);
    const s3 = await swarm();
    expect(s3.Spec.CAConfig.NodeCertExpiry).toBe(2 * 3600e9);
    expect(s3.Spec.Managers).toEqual({ Desired: 0, LostGracePeriod: 2e9 });
    expect(s3.Spec.EncryptionConfig).toEqual({ AutoLockManagers: false });
    // The spec and a token rotation in one request; a rotation alone needs no version.
    const rotated: string[] = [];
    api.deps.rotateJoinToken = async (role) => void rotated.push(role);
    expect((await api.call('POST', `/swarm/update?version=${s3.Version.Index}&rotateWorkerToken=true`, { Managers: { Desired: 5 } })).status).toBe(200);
    expect((await api.call('POST', '/swarm/update?rotateManagerToken=1')).status).toBe(200);
    expect(rotated).toEqual(['worker', 'manager']);
    expect((await swarm()).Spec.Managers.Desired).toBe(5);
    expect((await api.call('POST', '/swarm/update')).json.message).toContain('nothing to update');
  });

  test('init: CAConfig.NodeCertExpiry checked; the test-only minimum comes from the environment', async () => {
    const api = testApi();
    const r = await api.call('POST', '/swarm/init', { Spec: { CAConfig: { NodeCertExpiry: 20e9 } } });
    expect(r.status).toBe(400);
    expect(r.json.message).toContain('Spec.CAConfig.NodeCertExpiry: 20s is too short');
    process.env.SHOAL_TEST_MIN_CERT_EXPIRY = '10s';
    try {
      expect(nodeCertExpiryProblem(5e9)).toContain('at least 10s (lowered by SHOAL_TEST_MIN_CERT_EXPIRY, for tests only)');
      expect((await api.call('POST', '/swarm/init', { Spec: { CAConfig: { NodeCertExpiry: 20e9 } } })).status).toBe(200);
      expect((await api.call('GET', '/swarm')).json.Spec.CAConfig.NodeCertExpiry).toBe(20e9);
    } finally {
      delete process.env.SHOAL_TEST_MIN_CERT_EXPIRY;
    }
    expect(nodeCertExpiryProblem(3600e9)).toBeNull();
    expect(nodeCertExpiryProblem(11 * 365 * 24 * 3600e9)).toContain('too long');
  });

  test('unknown path → 404 JSON', async () => {
    const api = testApi();
    const r = await api.call('GET', '/nowhere');
    expect(r.status).toBe(404);
    expect(r.json.message).toContain('/nowhere');
  });
});

describe('what the docker CLI asks that shoal does not do', () => {
  test('unlock-key is empty without autolock, unlock on an unlocked node and bad root CA rotation fields are refused by name; system df is empty', async () => {
    const api = testApi();
    expect((await api.call('POST', '/swarm/init', {})).status).toBe(200);
    expect((await api.call('GET', '/swarm/unlockkey')).json).toEqual({ UnlockKey: '' });
    const unlock = await api.call('POST', '/swarm/unlock', { UnlockKey: 'x' });
    expect(unlock.status).toBe(409);
    expect(unlock.json.message).toBe('swarm is not locked');
    const version = (await api.call('GET', '/swarm')).json.Version.Index;
    for (const [spec, field] of [
      [{ EncryptionConfig: { AutoLockManagers: 'yes' } }, 'Spec.EncryptionConfig.AutoLockManagers'],
      [{ CAConfig: { ForceRotate: -1 } }, 'Spec.CAConfig.ForceRotate: expected an integer'],
      [{ CAConfig: { SigningCACert: 'PEM' } }, 'Spec.CAConfig.SigningCACert: expected a PEM certificate'],
      [{ CAConfig: { SigningCAKey: 'PEM' } }, 'Spec.CAConfig.SigningCAKey: expected a PEM private key'],
      [{ CAConfig: { ExternalCAs: [{ Protocol: 'acme', URL: 'https://x' }] } }, 'Spec.CAConfig.ExternalCAs[0].Protocol: "acme" is not supported'],
      [{ CAConfig: { ExternalCAs: [{ Protocol: 'cfssl', URL: 'ftp://x' }] } }, 'Spec.CAConfig.ExternalCAs[0].URL: expected the http:// or https:// URL'],
    ] as const) {
      const r = await api.call('POST', `/swarm/update?version=${version}`, spec);
      expect({ field, status: r.status }).toEqual({ field, status: 400 });
      expect(r.json.message).toContain(field);
    }
    // What the CLI sends back unchanged (autolock off, no rotation) still goes through.
    const ok = await api.call('POST', `/swarm/update?version=${version}`, { EncryptionConfig: { AutoLockManagers: false }, CAConfig: { ForceRotate: 0 } });
    expect(ok.status).toBe(200);
    expect((await api.call('GET', '/system/df')).json).toEqual({ LayersSize: 0, Images: [], Containers: [], Volumes: [], BuildCache: [] });
  });
});
