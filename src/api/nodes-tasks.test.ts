import { beforeEach, describe, expect, test } from 'bun:test';
import { proc, type TestApi, testApi } from './test-helper.ts';

let api: TestApi;
let nodeId: string;
beforeEach(async () => {
  api = testApi();
  nodeId = await api.init();
});

const q = (path: string, f: object) => `${path}?filters=${encodeURIComponent(JSON.stringify(f))}`;

describe('tasks', () => {
  test('filters: service (name, id, removed id), node, desired-state, id; get by id/prefix', async () => {
    await api.call('POST', '/services/create', proc('web'));
    await api.call('POST', '/services/create', proc('db'));
    const web = (await api.call('GET', '/services/web')).json;
    const db = (await api.call('GET', '/services/db')).json;
    const a = await api.addTask({ ServiceID: web.ID, Slot: 1 });
    const b = await api.addTask({ ServiceID: web.ID, Slot: 2, DesiredState: 'shutdown' });
    await api.addTask({ ServiceID: db.ID, Slot: 1, NodeID: '' });
    expect((await api.call('GET', '/tasks')).json).toHaveLength(3);
    expect((await api.call('GET', q('/tasks', { service: ['web'] }))).json).toHaveLength(2);
    expect((await api.call('GET', q('/tasks', { service: [web.ID] }))).json).toHaveLength(2);
    expect((await api.call('GET', q('/tasks', { service: ['web'], 'desired-state': ['running'] }))).json.map((t: any) => t.ID)).toEqual([a.ID]);
    expect((await api.call('GET', q('/tasks', { node: [nodeId] }))).json).toHaveLength(2);
    expect((await api.call('GET', q('/tasks', { node: ['host-a'] }))).json).toHaveLength(2);
    expect((await api.call('GET', q('/tasks', { id: [b.ID.slice(0, 8)] }))).json).toHaveLength(1);
    expect((await api.call('GET', q('/tasks', { 'desired-state': ['sleeping'] }))).status).toBe(400);
    await api.call('POST', `/services/${db.ID}/update?version=${db.Version.Index}`, { ...db.Spec, Labels: { 'com.docker.stack.namespace': 'app' } });
    expect((await api.call('GET', q('/tasks', { label: ['com.docker.stack.namespace=app'] }))).json).toHaveLength(1); // the service's labels, as swarmkit
    expect((await api.call('GET', q('/tasks', { colour: ['red'] }))).status).toBe(400);
    expect((await api.call('GET', `/tasks/${a.ID}`)).json.ID).toBe(a.ID);
    expect((await api.call('GET', `/tasks/${a.ID.slice(0, 10)}`)).json.ID).toBe(a.ID);
    expect((await api.call('GET', '/tasks/zzzzzzz')).status).toBe(404);
    const fresh = await api.addTask({ ServiceID: db.ID, Slot: 2, Spec: db.Spec.TaskTemplate });
    expect((await api.call('GET', q('/tasks', { service: ['db'], '_up-to-date': { true: true } }))).json.map((t: any) => t.ID)).toEqual([fresh.ID]);
    await api.call('DELETE', '/services/web');
    expect((await api.call('GET', q('/tasks', { service: [web.ID] }))).json).toHaveLength(2);
  });
});

describe('nodes', () => {
  test('list, get by id/hostname/prefix, filters', async () => {
    expect((await api.call('GET', '/nodes')).json.map((n: any) => n.ID)).toEqual([nodeId]);
    for (const ref of [nodeId, 'host-a', nodeId.slice(0, 5)]) expect((await api.call('GET', `/nodes/${ref}`)).json.ID).toBe(nodeId);
    expect((await api.call('GET', '/nodes/nope')).status).toBe(404);
    expect((await api.call('GET', q('/nodes', { role: ['worker'] }))).json).toHaveLength(0);
    expect((await api.call('GET', q('/nodes', { role: ['manager'] }))).json).toHaveLength(1);
  });

  test('update: availability and labels with ?version; stale → 409; bad values → 400; last manager cannot be demoted', async () => {
    const n = (await api.call('GET', `/nodes/${nodeId}`)).json;
    const r = await api.call('POST', `/nodes/${nodeId}/update?version=${n.Version.Index}`, { ...n.Spec, Availability: 'drain', Labels: { zone: 'mars' } });
    expect(r.status).toBe(200);
    const after = (await api.call('GET', `/nodes/${nodeId}`)).json;
    expect(after.Spec).toMatchObject({ Availability: 'drain', Labels: { zone: 'mars' }, Role: 'manager' });
    expect((await api.call('POST', `/nodes/${nodeId}/update?version=${n.Version.Index}`, { Availability: 'active' })).status).toBe(409);
    const bad = await api.call('POST', `/nodes/${nodeId}/update?version=${after.Version.Index}`, { Availability: 'asleep' });
    expect(bad.status).toBe(400);
    expect(bad.json.message).toContain('Availability');
    expect((await api.call('POST', `/nodes/${nodeId}/update?version=${after.Version.Index}`, { Colour: 'red' })).json.message).toContain('Colour');
    expect((await api.call('POST', `/nodes/${nodeId}/update?version=${after.Version.Index}`, { Role: 'worker' })).status).toBe(409);
    expect((await api.call('POST', `/nodes/nope/update?version=1`, {})).status).toBe(404);
  });

  test('a role changed by hand in the automatic mode turns the manager count off (Spec.Managers.Desired -1)', async () => {
    const w = { ID: 'w1', Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: { Role: 'worker', Availability: 'active', Labels: {} }, Description: { Hostname: 'w1', Platform: { OS: 'linux', Architecture: 'x86_64' }, Resources: { NanoCPUs: 1e9, MemoryBytes: 2 ** 30 }, Engine: { EngineVersion: 't', Plugins: [] } }, Status: { State: 'ready' }, AdvertiseAddr: '127.0.0.2:4789' } as const;
    await api.deps.store.update((tx) => tx.create('nodes', structuredClone(w) as any));
    expect((await api.call('GET', '/swarm')).json.Spec.Managers?.Desired ?? 0).toBe(0);
    const n = (await api.call('GET', '/nodes/w1')).json;
    expect((await api.call('POST', `/nodes/w1/update?version=${n.Version.Index}`, { Role: 'manager' })).status).toBe(200);
    expect((await api.call('GET', '/swarm')).json.Spec.Managers.Desired).toBe(-1);
  });
});

test("TLSInfo's issuer fields are shown only in Docker's base64 shape (the docker CLI fails on text)", async () => {
  const setIssuer = async (subject: string) => {
    const n = api.deps.store.get('nodes', nodeId)!;
    await api.deps.store.update((tx) => tx.update('nodes', { ...n, Description: { ...n.Description, TLSInfo: { TrustRoot: 'pem', CertIssuerSubject: subject, CertSerial: '01' } } }));
  };
  await setIssuer('CN=shoal root CA, O=c1'); // as an earlier version recorded it
  expect((await api.call('GET', `/nodes/${nodeId}`)).json.Description.TLSInfo).toEqual({ TrustRoot: 'pem', CertSerial: '01' });
  await setIssuer('MCAxHjAcBgNVBAMTFXNob2Fs');
  expect((await api.call('GET', '/nodes')).json[0].Description.TLSInfo.CertIssuerSubject).toBe('MCAxHjAcBgNVBAMTFXNob2Fs');
});

describe('dockerNode', () => {
  test('a worker shows no ManagerStatus (the store keeps a demoted node\'s last one); a manager keeps its own', async () => {
    const { dockerNode } = await import('./nodes.ts');
    const self = (await api.call('GET', `/nodes/${nodeId}`)).json;
    expect(dockerNode(self).ManagerStatus?.Leader).toBe(true);
    const demoted = { ...self, Spec: { ...self.Spec, Role: 'worker' } };
    expect(dockerNode(demoted).ManagerStatus).toBeUndefined();
    expect('ManagerStatus' in dockerNode(demoted)).toBe(false);
  });
});
