import { beforeEach, describe, expect, test } from 'bun:test';
import { proc, type TestApi, testApi } from './test-helper.ts';

let api: TestApi;
beforeEach(async () => {
  api = testApi();
  await api.init();
});

const create = (name: string, Mode: unknown, extra: Record<string, unknown> = {}) => api.call('POST', '/services/create', proc(name, { Mode, ...extra }));

describe('job services in the API', () => {
  test('create: defaults, and a JobStatus with iteration 0 and when it ran', async () => {
    expect((await create('a', { ReplicatedJob: {} })).status).toBe(201);
    const a = (await api.call('GET', '/services/a')).json;
    expect(a.Spec.Mode).toEqual({ ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } });
    expect(a.JobStatus.JobIteration).toEqual({ Index: 0 });
    expect(Number.isNaN(Date.parse(a.JobStatus.LastExecution))).toBe(false);
    expect((await create('b', { ReplicatedJob: { MaxConcurrent: 3 } })).status).toBe(201);
    expect((await api.call('GET', '/services/b')).json.Spec.Mode).toEqual({ ReplicatedJob: { MaxConcurrent: 3, TotalCompletions: 3 } });
    expect((await create('g', { GlobalJob: {} })).status).toBe(201);
    const g = (await api.call('GET', '/services/g')).json;
    expect(g.Spec.Mode).toEqual({ GlobalJob: {} });
    expect(g.JobStatus.JobIteration).toEqual({ Index: 0 });
    // Not a job: no JobStatus.
    await api.call('POST', '/services/create', proc('web'));
    expect((await api.call('GET', '/services/web')).json.JobStatus).toBeUndefined();
  });

  test('bad input is a 400 naming the field', async () => {
    const cases: [unknown, Record<string, unknown>, string][] = [
      [{ ReplicatedJob: { MaxConcurrent: -1 } }, {}, 'Mode.ReplicatedJob.MaxConcurrent'],
      [{ ReplicatedJob: { MaxConcurrent: 0 } }, {}, 'Mode.ReplicatedJob.MaxConcurrent: expected at least 1'],
      [{ ReplicatedJob: { TotalCompletions: -2 } }, {}, 'Mode.ReplicatedJob.TotalCompletions'],
      [{ ReplicatedJob: { TotalCompletions: 1.5 } }, {}, 'Mode.ReplicatedJob.TotalCompletions'],
      [{ ReplicatedJob: { Replicas: 2 } }, {}, 'Mode.ReplicatedJob.Replicas: unknown field'],
      [{ GlobalJob: { TotalCompletions: 2 } }, {}, 'Mode.GlobalJob.TotalCompletions: unknown field'],
      [{ GlobalJob: {}, Replicated: { Replicas: 2 } }, {}, 'Mode: give only one of'],
      [{ ReplicatedJob: {} }, { UpdateConfig: { Parallelism: 1 } }, 'UpdateConfig: a job'],
    ];
    for (const [mode, extra, message] of cases) {
      const r = await create('bad', mode, extra);
      expect(r.status, JSON.stringify(mode)).toBe(400);
      expect(r.json.message).toContain(message);
    }
  });

  test('an update starts a new iteration (growing); a service cannot change to or from a job', async () => {
    await create('j', { ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 2 } });
    const s = (await api.call('GET', '/services/j')).json;
    const up = await api.call('POST', `/services/j/update?version=${s.Version.Index}`, { ...s.Spec, Mode: { ReplicatedJob: { MaxConcurrent: 2, TotalCompletions: 4 } } });
    expect(up.status).toBe(200);
    const s2 = (await api.call('GET', '/services/j')).json;
    expect(s2.JobStatus.JobIteration.Index).toBe(s.Version.Index);
    expect(s2.JobStatus.JobIteration.Index).toBeGreaterThan(s.JobStatus.JobIteration.Index);
    await api.call('POST', `/services/j/update?version=${s2.Version.Index}`, s2.Spec);
    const s3 = (await api.call('GET', '/services/j')).json;
    expect(s3.JobStatus.JobIteration.Index).toBeGreaterThan(s2.JobStatus.JobIteration.Index);
    const toReplicated = await api.call('POST', `/services/j/update?version=${s3.Version.Index}`, { ...s3.Spec, Mode: { Replicated: { Replicas: 1 } } });
    expect(toReplicated.status).toBe(400);
    expect(toReplicated.json.message).toContain('Mode: a service cannot change between a job mode and replicated/global (this one is replicated-job');
    await api.call('POST', '/services/create', proc('web'));
    const w = (await api.call('GET', '/services/web')).json;
    const toJob = await api.call('POST', `/services/web/update?version=${w.Version.Index}`, { ...w.Spec, Mode: { GlobalJob: {} } });
    expect(toJob.status).toBe(400);
    expect(toJob.json.message).toContain('Mode:');
  });

  test('list filters by mode; status counts the current run', async () => {
    await create('j', { ReplicatedJob: { MaxConcurrent: 2, TotalCompletions: 5 } });
    await create('g', { GlobalJob: {} });
    await api.call('POST', '/services/create', proc('web'));
    const names = async (mode: string) => ((await api.call('GET', `/services?filters=${encodeURIComponent(JSON.stringify({ mode: [mode] }))}`)).json as { Spec: { Name: string } }[]).map((s) => s.Spec.Name);
    expect(await names('replicated-job')).toEqual(['j']);
    expect(await names('global-job')).toEqual(['g']);
    expect(await names('replicated')).toEqual(['web']);
    const list = (await api.call('GET', '/services?status=true')).json as { Spec: { Name: string }; ServiceStatus: unknown }[];
    expect(list.find((s) => s.Spec.Name === 'j')!.ServiceStatus).toEqual({ RunningTasks: 0, DesiredTasks: 2, CompletedTasks: 0 });
  });
});
