import { beforeEach, describe, expect, test } from 'bun:test';
import { proc, type TestApi, testApi } from './test-helper.ts';

let api: TestApi;
beforeEach(async () => {
  api = testApi();
  await api.init();
});

const docker = { 'user-agent': 'Docker-Client/28.2.2 (linux)', 'content-type': 'application/json' };

describe('the docker CLI and non-container services', () => {
  test('answers to the docker CLI carry a display-only ContainerSpec; others do not', async () => {
    await api.call('POST', '/services/create', proc('web'));
    const mine = (await api.call('GET', '/services/web')).json;
    expect(mine.Spec.TaskTemplate.ContainerSpec).toBeUndefined();
    const theirs = await (await api.app.request('/v1.47/services/web', { headers: docker })).json() as any;
    expect(theirs.Spec.TaskTemplate.ContainerSpec).toEqual({ Image: 'process: /bin/sleep', Args: ['60'] });
    expect(theirs.Spec.TaskTemplate.Runtime).toBeUndefined();
    const list = await (await api.app.request('/services', { headers: docker })).json() as any[];
    expect(list[0].Spec.TaskTemplate.ContainerSpec.Image).toBe('process: /bin/sleep');
    await api.addTask({ ServiceID: mine.ID, Spec: mine.Spec.TaskTemplate });
    const tasks = await (await api.app.request('/tasks', { headers: docker })).json() as any[];
    expect(tasks[0].Spec.ContainerSpec.Image).toBe('process: /bin/sleep');
  });

  test('an update sent back by the docker CLI (no ProcessSpec, display ContainerSpec) keeps the process', async () => {
    await api.call('POST', '/services/create', proc('web'));
    const s = await (await api.app.request('/services/web', { headers: docker })).json() as any;
    delete s.Spec.TaskTemplate.ProcessSpec; // the docker CLI's structs have no such field
    s.Spec.Mode = { Replicated: { Replicas: 4 } };
    s.Spec.TaskTemplate.ContainerSpec.Env = ['X=1']; // docker service update --env-add X=1 --args 90
    s.Spec.TaskTemplate.ContainerSpec.Args = ['90'];
    s.Spec.UpdateConfig = { Parallelism: 1, FailureAction: 'pause', MaxFailureRatio: 0, Order: 'stop-first' };
    const r = await api.app.request(`/v1.47/services/${s.ID}/update?version=${s.Version.Index}`, { method: 'POST', headers: docker, body: JSON.stringify(s.Spec) });
    expect(r.status).toBe(200);
    const after = (await api.call('GET', '/services/web')).json;
    expect(after.Spec.TaskTemplate.ProcessSpec).toEqual({ Command: ['/bin/sleep', '90'], Env: ['X=1'] });
    expect(after.Spec.TaskTemplate.Runtime).toBe('process');
    expect(after.Spec.TaskTemplate.ContainerSpec).toBeUndefined();
    expect(after.Spec.Mode.Replicated.Replicas).toBe(4);
  });

  test('changing the image of a process service is refused; a Runtime beside a ContainerSpec drops it', async () => {
    await api.call('POST', '/services/create', proc('web'));
    const s = await (await api.app.request('/services/web', { headers: docker })).json() as any;
    s.Spec.TaskTemplate.ContainerSpec.Image = 'nginx';
    const r = await api.app.request(`/services/web/update?version=${s.Version.Index}`, { method: 'POST', headers: docker, body: JSON.stringify(s.Spec) });
    expect(r.status).toBe(400);
    expect(((await r.json()) as any).message).toContain('TaskTemplate.ContainerSpec.Image');
    const c = await api.app.request('/services/create', { method: 'POST', headers: docker, body: JSON.stringify({ Name: 'm', TaskTemplate: { Runtime: 'mock', ContainerSpec: { Image: 'x' } } }) });
    expect(c.status).toBe(201);
  });

  test('node "self"', async () => {
    const id = api.deps.nodeId();
    expect((await api.call('GET', '/nodes/self')).json.ID).toBe(id!);
  });

  test('/version has the details the docker CLI prints', async () => {
    const v = (await api.call('GET', '/version')).json;
    expect(v.Components[0].Details).toMatchObject({ ApiVersion: '1.47', MinAPIVersion: '1.24', Os: 'linux' });
  });
});

describe('logs for the docker CLI', () => {
  test('multiplexed frames carrying the details it parses', async () => {
    await api.call('POST', '/services/create', proc('web'));
    const web = (await api.call('GET', '/services/web')).json;
    const t = await api.addTask({ ServiceID: web.ID, Spec: web.Spec.TaskTemplate });
    api.logs.set(t.ID, [{ stream: 'stdout', time: 1, line: 'out' }, { stream: 'stderr', time: 2, line: 'err' }]);
    const r = await api.app.request('/v1.47/services/web/logs?stdout=1&stderr=1&details=true', { headers: docker });
    const buf = new Uint8Array(await r.arrayBuffer());
    const frames: [number, string][] = [];
    for (let at = 0; at < buf.length;) {
      const len = new DataView(buf.buffer, buf.byteOffset + at + 4, 4).getUint32(0);
      frames.push([buf[at]!, new TextDecoder().decode(buf.subarray(at + 8, at + 8 + len))]);
      at += 8 + len;
    }
    const details = `com.docker.swarm.node.id=${t.NodeID},com.docker.swarm.service.id=${web.ID},com.docker.swarm.task.id=${t.ID}`;
    expect(frames).toEqual([[1, `${details} out\n`], [2, `${details} err\n`]]);
  });
});

describe('specs the docker CLI sends back', () => {
  test('empty objects and zero ForceUpdate are dropped, so a scale does not change the task spec', async () => {
    await api.call('POST', '/services/create', proc('web'));
    const s = await (await api.app.request('/services/web', { headers: docker })).json() as any;
    const before = (await api.call('GET', '/services/web')).json.Spec.TaskTemplate;
    Object.assign(s.Spec.TaskTemplate, { Placement: { Constraints: [] }, Resources: { Limits: {}, Reservations: {} }, ForceUpdate: 0, Networks: [], LogDriver: null });
    s.Spec.Mode = { Replicated: { Replicas: 2 } };
    const r = await api.app.request(`/services/web/update?version=${s.Version.Index}`, { method: 'POST', headers: docker, body: JSON.stringify(s.Spec) });
    expect(r.status).toBe(200);
    expect((await api.call('GET', '/services/web')).json.Spec.TaskTemplate).toEqual(before);
  });
});
