import { beforeEach, describe, expect, test } from 'bun:test';
import { MAX_SECRET_BYTES } from '../types/index.ts';
import { proc, type TestApi, testApi } from './test-helper.ts';

let api: TestApi;
beforeEach(async () => {
  api = testApi();
  await api.init();
});

const b64 = (s: string | Uint8Array) => Buffer.from(s).toString('base64');
const q = (f: unknown) => `filters=${encodeURIComponent(JSON.stringify(f))}`;

describe('secrets', () => {
  test('create, inspect by id/name/prefix and list never return the data', async () => {
    const r = await api.call('POST', '/v1.47/secrets/create', { Name: 'db-pass', Labels: { team: 'a' }, Data: b64('hunter2') });
    expect(r.status).toBe(201);
    const id = r.json.ID as string;
    for (const ref of [id, 'db-pass', id.slice(0, 6)]) {
      const s = await api.call('GET', `/secrets/${ref}`);
      expect(s.status).toBe(200);
      expect(s.json).toMatchObject({ ID: id, Spec: { Name: 'db-pass', Labels: { team: 'a' } } });
      expect(s.json.Spec.Data).toBeUndefined();
      expect(s.text).not.toContain(b64('hunter2'));
    }
    await api.call('POST', '/secrets/create', { Name: 'db-user', Data: b64('admin') });
    const all = await api.call('GET', '/secrets');
    expect(all.json.map((s: any) => s.Spec.Name)).toEqual(['db-pass', 'db-user']);
    expect(all.text).not.toContain(b64('hunter2'));
    expect((await api.call('GET', `/secrets?${q({ name: ['db-p'] })}`)).json.map((s: any) => s.Spec.Name)).toEqual(['db-pass']);
    expect((await api.call('GET', `/secrets?${q({ names: ['db'] })}`)).json).toEqual([]);
    expect((await api.call('GET', `/secrets?${q({ label: ['team=a'] })}`)).json.map((s: any) => s.ID)).toEqual([id]);
    expect((await api.call('GET', `/secrets?${q({ driver: ['x'] })}`)).status).toBe(400);
    expect((await api.call('GET', '/secrets/nope')).status).toBe(404);
  });

  test('bad input: name, data, size, duplicates', async () => {
    const bad = async (body: unknown, status: number, text: string) => {
      const r = await api.call('POST', '/secrets/create', body);
      expect(r.status).toBe(status);
      expect(r.json.message).toContain(text);
    };
    await bad({ Name: '-x', Data: b64('a') }, 400, 'invalid secret name');
    await bad({ Name: 'a'.repeat(65), Data: b64('a') }, 400, 'longer than 64');
    await bad({ Name: 'x', Data: 'not base64!' }, 400, 'base64');
    await bad({ Name: 'x' }, 400, 'cannot be empty');
    await bad({ Name: 'x', Data: b64(new Uint8Array(MAX_SECRET_BYTES + 1)) }, 400, 'the limit is 512000 bytes');
    await bad({ Name: 'x', Data: b64('a'), Bogus: 1 }, 400, 'Bogus');
    expect((await api.call('POST', '/secrets/create', { Name: 'x', Data: b64(new Uint8Array(MAX_SECRET_BYTES)) })).status).toBe(201);
    await bad({ Name: 'x', Data: b64('a') }, 409, 'already in use');
  });

  test('update changes labels only, at the version read', async () => {
    const id = (await api.call('POST', '/secrets/create', { Name: 's', Data: b64('v1') })).json.ID;
    const cur = (await api.call('GET', `/secrets/${id}`)).json;
    const up = await api.call('POST', `/secrets/${id}/update?version=${cur.Version.Index}`, { Name: 's', Labels: { k: 'v' } });
    expect(up.status).toBe(200);
    expect((await api.call('GET', `/secrets/${id}`)).json.Spec.Labels).toEqual({ k: 'v' });
    expect((await api.call('POST', `/secrets/${id}/update?version=${cur.Version.Index}`, { Labels: {} })).status).toBe(409);
    const now = (await api.call('GET', `/secrets/${id}`)).json.Version.Index;
    const data = await api.call('POST', `/secrets/${id}/update?version=${now}`, { Name: 's', Data: b64('v2') });
    expect(data.status).toBe(400);
    expect(data.json.message).toContain('only updates to Labels');
  });

  test('configs return their data', async () => {
    const id = (await api.call('POST', '/configs/create', { Name: 'nginx.conf', Data: b64('worker_processes 1;') })).json.ID;
    expect((await api.call('GET', `/configs/${id}`)).json.Spec.Data).toBe(b64('worker_processes 1;'));
    expect((await api.call('GET', '/configs')).json[0].Spec.Data).toBe(b64('worker_processes 1;'));
    expect((await api.call('GET', '/secrets')).json).toEqual([]);
  });

  test('services reference them by name; a missing one is a 400; removal in use is a 409 naming the services', async () => {
    const sid = (await api.call('POST', '/secrets/create', { Name: 'token', Data: b64('t') })).json.ID;
    const cid = (await api.call('POST', '/configs/create', { Name: 'conf', Data: b64('c') })).json.ID;
    const missing = await api.call('POST', '/services/create', proc('web', { TaskTemplate: { Runtime: 'process', ProcessSpec: { Command: ['/bin/true'], Secrets: [{ SecretName: 'nope' }] } } }));
    expect(missing.status).toBe(400);
    expect(missing.json.message).toContain('TaskTemplate.ProcessSpec.Secrets[0]: secret "nope" not found');
    const abs = await api.call('POST', '/services/create', proc('web', { TaskTemplate: { Runtime: 'process', ProcessSpec: { Command: ['/bin/true'], Secrets: [{ SecretName: 'token', File: { Name: '/etc/x' } }] } } }));
    expect(abs.status).toBe(400);
    expect(abs.json.message).toContain('relative file name');
    const r = await api.call('POST', '/services/create', proc('web', {
      TaskTemplate: { Runtime: 'process', ProcessSpec: { Command: ['/bin/true'], Secrets: [{ SecretName: 'token', File: { Name: 'tok', UID: '1000', Mode: 0o400 } }], Configs: [{ ConfigID: cid }] } },
    }));
    expect(r.status).toBe(201);
    const svc = (await api.call('GET', '/services/web')).json;
    expect(svc.Spec.TaskTemplate.ProcessSpec.Secrets).toEqual([{ SecretID: sid, SecretName: 'token', File: { Name: 'tok', UID: '1000', GID: '0', Mode: 0o400 } }]);
    expect(svc.Spec.TaskTemplate.ProcessSpec.Configs).toEqual([{ ConfigID: cid, ConfigName: 'conf', File: { Name: 'conf', UID: '0', GID: '0', Mode: 0o444 } }]);
    await api.call('POST', '/services/create', proc('api', { TaskTemplate: { Runtime: 'process', ProcessSpec: { Command: ['/bin/true'], Secrets: [{ SecretName: 'token' }] } } }));
    const rm = await api.call('DELETE', '/secrets/token');
    expect(rm.status).toBe(409);
    expect(rm.json.message).toBe('secret token is in use by the following services: api, web');
    expect((await api.call('DELETE', '/configs/conf')).status).toBe(409);
    await api.call('DELETE', '/services/web');
    await api.call('DELETE', '/services/api');
    expect((await api.call('DELETE', '/secrets/token')).status).toBe(204);
    expect((await api.call('DELETE', '/configs/conf')).status).toBe(204);
    expect((await api.call('GET', '/secrets/token')).status).toBe(404);
  });

  test('the store refuses a delete that races with a service starting to use it', async () => {
    const sid = (await api.call('POST', '/secrets/create', { Name: 'token', Data: b64('t') })).json.ID;
    await api.call('POST', '/services/create', proc('web', { TaskTemplate: { Runtime: 'process', ProcessSpec: { Command: ['/bin/true'], Secrets: [{ SecretName: 'token' }] } } }));
    const store = api.deps.store;
    await expect(store.update((tx) => tx.delete('secrets', sid))).rejects.toThrow('secret token is in use by the following service: web');
  });
});

describe('secrets and the docker CLI', () => {
  const docker = { 'user-agent': 'Docker-Client/28.2.2 (linux)', 'content-type': 'application/json' };
  test('a process service\'s secrets round-trip through its display ContainerSpec (docker service update --secret-rm/--secret-add)', async () => {
    await api.call('POST', '/secrets/create', { Name: 'a', Data: b64('1') });
    const b = (await api.call('POST', '/secrets/create', { Name: 'b', Data: b64('2') })).json.ID;
    await api.call('POST', '/services/create', proc('web', { TaskTemplate: { Runtime: 'process', ProcessSpec: { Command: ['/bin/true'], Secrets: [{ SecretName: 'a' }] } } }));
    const s = await (await api.app.request('/services/web', { headers: docker })).json() as any;
    expect(s.Spec.TaskTemplate.ContainerSpec.Secrets[0].SecretName).toBe('a');
    delete s.Spec.TaskTemplate.ProcessSpec;
    s.Spec.TaskTemplate.ContainerSpec.Secrets = [{ SecretID: b, SecretName: 'b', File: { Name: 'a', UID: '0', GID: '0', Mode: 0o444 } }];
    const r = await api.app.request(`/v1.47/services/${s.ID}/update?version=${s.Version.Index}`, { method: 'POST', headers: docker, body: JSON.stringify(s.Spec) });
    expect(r.status).toBe(200);
    const after = (await api.call('GET', '/services/web')).json;
    expect(after.Spec.TaskTemplate.ProcessSpec.Secrets).toEqual([{ SecretID: b, SecretName: 'b', File: { Name: 'a', UID: '0', GID: '0', Mode: 0o444 } }]);
    expect((await api.call('DELETE', '/secrets/a')).status).toBe(204);
  });

  test('a plugin\'s runtime carries its references in PluginSpec.<runtime>: resolved, checked, and counted as in use', async () => {
    const sid = (await api.call('POST', '/secrets/create', { Name: 'token', Data: b64('t') })).json.ID;
    const plugin = (own: unknown) => proc('p', { TaskTemplate: { Runtime: 'script', PluginSpec: { script: own } } });
    const created = await api.call('POST', '/services/create', plugin({ Source: 'true', Secrets: [{ SecretName: 'token' }] }));
    expect(created.status).toBe(201);
    const svc = (await api.call('GET', '/services/p')).json;
    expect(svc.Spec.TaskTemplate.PluginSpec.script).toEqual({ Source: 'true', Secrets: [{ SecretID: sid, SecretName: 'token', File: { Name: 'token', UID: '0', GID: '0', Mode: 0o444 } }] });
    expect((await api.call('DELETE', '/secrets/token')).status).toBe(409);
    const bad = async (own: unknown, text: string) => {
      const r = await api.call('POST', '/services/create', { ...plugin(own), Name: 'q' });
      expect(r.status).toBe(400);
      expect(r.json.message).toContain(text);
    };
    await bad({ Source: 'true', Secrets: 'token' }, 'TaskTemplate.PluginSpec.script.Secrets');
    await bad({ Source: 'true', Secrets: [{ SecretName: 'token', Bogus: 1 }] }, 'TaskTemplate.PluginSpec.script.Secrets[0].Bogus: unknown field');
    await bad({ Source: 'true', Secrets: [{ SecretName: 'nope' }] }, 'TaskTemplate.PluginSpec.script.Secrets[0]: secret "nope" not found');
    await bad({ Source: 'true', Secrets: [{ SecretName: 'token', File: { Name: '/etc/x' } }] }, 'give a relative file name');
  });

  test('a plugin service\'s secrets round-trip through its display ContainerSpec too', async () => {
    await api.call('POST', '/secrets/create', { Name: 'a', Data: b64('1') });
    const b = (await api.call('POST', '/secrets/create', { Name: 'b', Data: b64('2') })).json.ID;
    await api.call('POST', '/services/create', proc('p', { TaskTemplate: { Runtime: 'script', PluginSpec: { script: { Source: 'true', Secrets: [{ SecretName: 'a' }] } } } }));
    const s = await (await api.app.request('/services/p', { headers: docker })).json() as any;
    expect(s.Spec.TaskTemplate.ContainerSpec.Secrets[0].SecretName).toBe('a');
    s.Spec.TaskTemplate.ContainerSpec.Secrets = [{ SecretID: b, SecretName: 'b', File: { Name: 'a', UID: '0', GID: '0', Mode: 0o444 } }];
    const r = await api.app.request(`/v1.47/services/${s.ID}/update?version=${s.Version.Index}`, { method: 'POST', headers: docker, body: JSON.stringify(s.Spec) });
    expect(r.status).toBe(200);
    const after = (await api.call('GET', '/services/p')).json;
    expect(after.Spec.TaskTemplate.PluginSpec.script).toEqual({ Source: 'true', Secrets: [{ SecretID: b, SecretName: 'b', File: { Name: 'a', UID: '0', GID: '0', Mode: 0o444 } }] });
  });
});
