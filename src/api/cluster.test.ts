import { describe, expect, test } from 'bun:test';
import { UnavailableError } from '../lib/errors.ts';
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

  test('unknown path → 404 JSON', async () => {
    const api = testApi();
    const r = await api.call('GET', '/nowhere');
    expect(r.status).toBe(404);
    expect(r.json.message).toContain('/nowhere');
  });
});
