import { beforeEach, describe, expect, test } from 'bun:test';
import { MAX_BODY_BYTES } from './middleware.ts';
import { proc, type TestApi, testApi } from './test-helper.ts';

let api: TestApi;
beforeEach(async () => {
  api = testApi();
  await api.init();
});

describe('services', () => {
  test('create fills defaults; get by id, name and prefix; /v1.47 prefix', async () => {
    const r = await api.call('POST', '/services/create', proc('web'));
    expect(r.status).toBe(201);
    expect(r.json.Warnings).toEqual([]);
    const id = r.json.ID as string;
    expect(id).toHaveLength(25);
    for (const ref of [id, 'web', id.slice(0, 6)]) {
      const g = await api.call('GET', `/v1.47/services/${ref}`);
      expect(g.status).toBe(200);
      expect(g.json.ID).toBe(id);
    }
    const s = (await api.call('GET', '/services/web')).json;
    expect(s.Spec.Mode).toEqual({ Replicated: { Replicas: 1 } });
    expect(s.Spec.TaskTemplate.RestartPolicy).toEqual({ Condition: 'any', Delay: 5e9, MaxAttempts: 0, Window: 0 });
    expect(s.Spec.TaskTemplate.Runtime).toBe('process');
    expect(s.Version.Index).toBeGreaterThan(0);
  });

  test('runtime defaults: ContainerSpec → container, nothing → process needs ProcessSpec; mock gets an empty MockSpec', async () => {
    expect((await api.call('POST', '/services/create', { Name: 'c', TaskTemplate: { ContainerSpec: { Image: 'nginx', Init: false, DNSConfig: {} } } })).status).toBe(201);
    expect((await api.call('GET', '/services/c')).json.Spec.TaskTemplate.Runtime).toBe('container');
    const none = await api.call('POST', '/services/create', { Name: 'p', TaskTemplate: {} });
    expect(none.status).toBe(400);
    expect(none.json.message).toContain('TaskTemplate.ProcessSpec');
    expect((await api.call('POST', '/services/create', { Name: 'm', TaskTemplate: { Runtime: 'mock' } })).status).toBe(201);
    expect((await api.call('GET', '/services/m')).json.Spec.TaskTemplate.MockSpec).toEqual({});
    const mixed = await api.call('POST', '/services/create', { Name: 'x', TaskTemplate: { Runtime: 'mock', ProcessSpec: { Command: ['a'] } } });
    expect(mixed.status).toBe(400);
    expect(mixed.json.message).toContain('TaskTemplate.ProcessSpec');
  });

  test('vm and container specs', async () => {
    const vm = (VMSpec: unknown) => api.call('POST', '/services/create', { Name: `v${Math.random().toString(36).slice(2, 8)}`, TaskTemplate: { Runtime: 'vm', VMSpec } });
    expect((await vm({ Kernel: '/k', Initrd: '/i', Cmdline: 'quiet' })).status).toBe(201);
    expect((await vm({ Disk: '/d.img' })).status).toBe(201);
    expect((await vm({ Cmdline: 'x' })).json.message).toContain('TaskTemplate.VMSpec: give Kernel');
    expect((await vm({ Disk: '/d', Initrd: '/i' })).json.message).toContain('TaskTemplate.VMSpec.Initrd');
    expect((await vm({ Kernel: '/k', Cpus: 2 })).json.message).toContain('TaskTemplate.VMSpec.Cpus: unknown field');
    expect((await api.call('POST', '/services/create', { Name: 'v0', TaskTemplate: { Runtime: 'vm' } })).json.message).toContain('TaskTemplate.VMSpec: required');
    expect((await api.call('POST', '/services/create', { Name: 'ig', TaskTemplate: { Runtime: 'mock', MockSpec: { IgnoreStop: true } } })).status).toBe(201);
    const c = (cs: unknown) => api.call('POST', '/services/create', { Name: `c${Math.random().toString(36).slice(2, 8)}`, TaskTemplate: { ContainerSpec: cs } });
    expect((await c({ Image: 'busybox', Init: true, Hostname: 'h', Mounts: [{ Type: 'bind', Source: '/a', Target: '/b', ReadOnly: true }], Healthcheck: { Test: ['CMD', 'true'], Interval: 1e9 } })).status).toBe(201);
    expect((await c({ Image: 'busybox', Mounts: [{ Type: 'nfs', Target: '/b' }] })).json.message).toContain('TaskTemplate.ContainerSpec.Mounts[0].Type');
    expect((await c({ Image: 'busybox', Healthcheck: { Retries: -1 } })).json.message).toContain('TaskTemplate.ContainerSpec.Healthcheck.Retries');
  });

  test('validation names the field path', async () => {
    const cases: [unknown, string][] = [
      [{ Name: 'a', TaskTemplate: { ProcessSpec: { Command: ['x'] }, RestartPolicy: { Delay: 'soon' } } }, 'TaskTemplate.RestartPolicy.Delay: expected a number'],
      [{ Name: 'a', TaskTemplate: { ProcessSpec: { Command: ['x'] }, RestartPolicy: { Bogus: 1 } } }, 'TaskTemplate.RestartPolicy.Bogus: unknown field'],
      [{ Name: 'a', TaskTemplate: { ProcessSpec: { Command: [] } } }, 'TaskTemplate.ProcessSpec.Command'],
      [{ Name: 'a', TaskTemplate: { ProcessSpec: { Command: [1] } } }, 'TaskTemplate.ProcessSpec.Command[0]: expected a string'],
      [{ Name: 'a', TaskTemplate: { ProcessSpec: { Command: ['x'] } }, Mode: { Replicated: { Replicas: -1 } } }, 'Mode.Replicated.Replicas'],
      [{ Name: 'a', TaskTemplate: { ProcessSpec: { Command: ['x'] } }, Mode: { Replicated: { Replicas: 1.5 } } }, 'Mode.Replicated.Replicas'],
      [{ Name: 'a', TaskTemplate: { ProcessSpec: { Command: ['x'] }, Placement: { Constraints: ['node.role=manager'] } } }, 'TaskTemplate.Placement.Constraints[0]'],
      [{ Name: 'a', TaskTemplate: { ProcessSpec: { Command: ['x'] } }, EndpointSpec: { Ports: [{ TargetPort: 70000 }] } }, 'EndpointSpec.Ports[0].TargetPort'],
      [{ Name: 'a', TaskTemplate: { ProcessSpec: { Command: ['x'] } }, EndpointSpec: { Ports: [{ TargetPort: 8000, PublishedPort: 8000 }] } }, 'EndpointSpec.Ports[0]: published port 8000 is the target port of a process task'],
      [{ Name: 'a b', TaskTemplate: { ProcessSpec: { Command: ['x'] } } }, 'Name'],
      [{ Name: 'a', TaskTemplate: { ProcessSpec: { Command: ['x'] } }, Mode: { Replicated: {}, Global: {} } }, 'Mode'],
      [{ Name: 'a', TaskTemplate: { ProcessSpec: { Command: ['x'] } }, Extra: true }, 'Extra: unknown field'],
      [{ Name: 'a', TaskTemplate: { Runtime: 'BAD RUNTIME' } }, 'TaskTemplate.Runtime'],
      [[], 'body: expected an object'],
      [null, 'body: expected an object'],
      ['{"Name": "x", "TaskTemplate": ', 'malformed JSON'],
      ['', 'empty'],
    ];
    for (const [body, want] of cases) {
      const r = await api.call('POST', '/services/create', body);
      expect({ body, status: r.status }).toEqual({ body, status: 400 });
      expect(r.json.message).toContain(want);
    }
    expect((await api.call('GET', '/_ping')).status).toBe(200);
  });

  test('fuzzed bodies never crash: always a 4xx with a message', async () => {
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const atoms = [null, true, 0, -1, 1e308, 'x', '', [], {}, [1, 'a'], { Image: 1 }];
    const keys = ['Name', 'TaskTemplate', 'ProcessSpec', 'Command', 'Mode', 'Replicated', 'Replicas', 'RestartPolicy', 'Delay', 'Runtime', 'MockSpec', 'Placement', 'Constraints', 'EndpointSpec', 'Ports', '__proto__', 'constructor'];
    const gen = (depth: number): unknown => {
      if (depth > 3 || rnd() < 0.3) return atoms[Math.floor(rnd() * atoms.length)];
      const o: Record<string, unknown> = {};
      const n = Math.floor(rnd() * 4);
      for (let i = 0; i < n; i++) o[keys[Math.floor(rnd() * keys.length)]!] = gen(depth + 1);
      return rnd() < 0.1 ? [o] : o;
    };
    for (let i = 0; i < 300; i++) {
      const body = gen(0);
      const r = await api.call('POST', '/services/create', body);
      expect([201, 400, 409]).toContain(r.status);
      if (r.status !== 201) expect(typeof r.json.message).toBe('string');
    }
    for (const raw of ['{', '}', '[', 'nul', '"', '{"a":}', '\u0000', '{"Name":"x"}{']) {
      const r = await api.call('POST', '/services/create', raw);
      expect(r.status).toBe(400);
    }
  });

  test('deeply nested bodies → 400, not a stack overflow', async () => {
    for (const n of [65, 100_000, 1_000_000]) {
      const deep = '['.repeat(n) + ']'.repeat(n);
      const r = await api.call('POST', '/services/create', `{"Name":"d","TaskTemplate":{"ContainerSpec":{"Image":"x","Foo":${deep}}}}`);
      expect(r.status).toBe(400);
      expect(r.json.message).toContain('nested deeper');
    }
    const ok = '['.repeat(40) + ']'.repeat(40);
    expect((await api.call('POST', '/services/create', `{"Name":"d","TaskTemplate":{"ContainerSpec":{"Image":"x","Foo":${ok}}}}`)).status).toBe(201);
  });

  test('huge body → 413 with a message', async () => {
    const r = await api.app.request('/services/create', { method: 'POST', body: JSON.stringify({ Name: 'x'.repeat(MAX_BODY_BYTES + 10) }) });
    expect(r.status).toBe(413);
    expect(((await r.json()) as { message: string }).message).toContain('too large');
  });

  test('runtime-specific validation comes from deps.validateTaskSpec', async () => {
    api = testApi({ validate: (s) => (s.ProcessSpec?.Command[0] === 'nope' ? 'ProcessSpec.Command[0]: "nope" is not executable' : null) });
    await api.init();
    const r = await api.call('POST', '/services/create', { Name: 'n', TaskTemplate: { ProcessSpec: { Command: ['nope'] } } });
    expect(r.status).toBe(400);
    expect(r.json.message).toContain('not executable');
  });

  test('name clash → 409; unknown → 404', async () => {
    expect((await api.call('POST', '/services/create', proc('twice'))).status).toBe(201);
    const r = await api.call('POST', '/services/create', proc('twice'));
    expect(r.status).toBe(409);
    expect(r.json.message).toContain('twice');
    for (const [m, p] of [['GET', '/services/nope'], ['DELETE', '/services/nope'], ['GET', '/services/nope/logs'], ['POST', '/services/nope/update?version=1']] as const) {
      const res = await api.call(m, p, m === 'POST' ? proc('nope') : undefined);
      expect(res.status).toBe(404);
    }
  });

  test('update with ?version: current → 200 and PreviousSpec; stale → 409; missing → 400; rename → 400', async () => {
    await api.call('POST', '/services/create', proc('web'));
    const s = (await api.call('GET', '/services/web')).json;
    const spec = { ...s.Spec, Mode: { Replicated: { Replicas: 3 } } };
    expect((await api.call('POST', `/services/web/update`, spec)).status).toBe(400);
    expect((await api.call('POST', `/services/web/update?version=abc`, spec)).status).toBe(400);
    const ok = await api.call('POST', `/v1.41/services/${s.ID}/update?version=${s.Version.Index}`, spec);
    expect(ok.status).toBe(200);
    const after = (await api.call('GET', '/services/web')).json;
    expect(after.Spec.Mode.Replicated.Replicas).toBe(3);
    expect(after.PreviousSpec.Mode.Replicated.Replicas).toBe(1);
    expect(after.Version.Index).toBeGreaterThan(s.Version.Index);
    const stale = await api.call('POST', `/services/web/update?version=${s.Version.Index}`, spec);
    expect(stale.status).toBe(409);
    const renamed = await api.call('POST', `/services/web/update?version=${after.Version.Index}`, { ...spec, Name: 'other' });
    expect(renamed.status).toBe(400);
  });

  test('rollback=previous swaps Spec and PreviousSpec, ignores the body; no previous spec → 400', async () => {
    await api.call('POST', '/services/create', proc('web', { Labels: { v: '1' } }));
    const s = (await api.call('GET', '/services/web')).json;
    const none = await api.call('POST', `/services/web/update?version=${s.Version.Index}&rollback=previous`, s.Spec);
    expect(none.status).toBe(400);
    expect(none.json.message).toContain('rollback: service "web" has no previous spec');
    const bad = await api.call('POST', `/services/web/update?version=${s.Version.Index}&rollback=yes`, s.Spec);
    expect(bad.status).toBe(400);
    expect(bad.json.message).toStartWith('rollback:');
    await api.call('POST', `/services/web/update?version=${s.Version.Index}`, { ...s.Spec, Labels: { v: '2' } });
    const v2 = (await api.call('GET', '/services/web')).json;
    expect(v2.UpdateStatus).toBeUndefined();
    const r = await api.call('POST', `/services/web/update?version=${v2.Version.Index}&rollback=previous`, v2.Spec);
    expect(r.status).toBe(200);
    const back = (await api.call('GET', '/services/web')).json;
    expect(back.Spec.Labels).toEqual({ v: '1' });
    expect(back.PreviousSpec.Labels).toEqual({ v: '2' });
    expect(back.UpdateStatus).toMatchObject({ State: 'rollback_started', Message: 'manually requested rollback' });
  });

  test('bad UpdateConfig / RollbackConfig → 400 naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ UpdateConfig: { Parallelism: -1 } }, 'UpdateConfig.Parallelism'],
      [{ UpdateConfig: { MaxFailureRatio: 1.5 } }, 'UpdateConfig.MaxFailureRatio'],
      [{ RollbackConfig: { MaxFailureRatio: -0.1 } }, 'RollbackConfig.MaxFailureRatio'],
      [{ UpdateConfig: { FailureAction: 'explode' } }, 'UpdateConfig.FailureAction'],
      [{ RollbackConfig: { Order: 'sideways' } }, 'RollbackConfig.Order'],
    ];
    for (const [extra, field] of cases) {
      const res = await api.call('POST', '/services/create', proc('web', extra));
      expect(res.status).toBe(400);
      expect(res.json.message).toStartWith(`${field}:`);
    }
  });

  test('list with filters and status; delete', async () => {
    await api.call('POST', '/services/create', proc('web', { Labels: { tier: 'front' }, Mode: { Replicated: { Replicas: 2 } } }));
    await api.call('POST', '/services/create', proc('db', { Mode: { Global: {} } }));
    const web = (await api.call('GET', '/services/web')).json;
    await api.addTask({ ServiceID: web.ID, Slot: 1 });
    await api.addTask({ ServiceID: web.ID, Slot: 2, Status: { Timestamp: '', State: 'pending', Message: 'no node' } });
    const all = (await api.call('GET', '/services?status=true')).json;
    expect(all.map((s: any) => s.Spec.Name)).toEqual(['db', 'web']);
    expect(all[1].ServiceStatus).toEqual({ RunningTasks: 1, DesiredTasks: 2, CompletedTasks: 0 });
    const q = (f: object) => api.call('GET', `/services?filters=${encodeURIComponent(JSON.stringify(f))}`);
    expect((await q({ name: ['we'] })).json.map((s: any) => s.Spec.Name)).toEqual(['web']);
    expect((await q({ mode: ['global'] })).json.map((s: any) => s.Spec.Name)).toEqual(['db']);
    expect((await q({ label: ['tier=front'] })).json).toHaveLength(1);
    expect((await q({ label: { tier: true } })).json).toHaveLength(1);
    expect((await q({ bogus: ['x'] })).status).toBe(400);
    expect((await api.call('GET', '/services?filters={')).status).toBe(400);
    expect((await api.call('DELETE', '/services/web')).status).toBe(200);
    expect((await api.call('GET', '/services/web')).status).toBe(404);
  });

  test('logs: plain text lines "<task> | <line>", time-ordered, tail, streams, timestamps', async () => {
    await api.call('POST', '/services/create', proc('web'));
    const web = (await api.call('GET', '/services/web')).json;
    const t1 = await api.addTask({ ServiceID: web.ID, Slot: 1 });
    const t2 = await api.addTask({ ServiceID: web.ID, Slot: 2 });
    api.logs.set(t1.ID, [{ stream: 'stdout', time: 1000, line: 'one' }, { stream: 'stderr', time: 3000, line: 'three' }]);
    api.logs.set(t2.ID, [{ stream: 'stdout', time: 2000, line: 'two' }]);
    const r = await api.call('GET', '/services/web/logs?stdout=1&stderr=1');
    expect(r.status).toBe(200);
    expect(r.text).toBe(`web.1.${t1.ID.slice(0, 12)} | one\nweb.2.${t2.ID.slice(0, 12)} | two\nweb.1.${t1.ID.slice(0, 12)} | three\n`);
    expect((await api.call('GET', '/services/web/logs?stdout=1')).text).not.toContain('three');
    expect((await api.call('GET', '/services/web/logs?since=2.5')).text.trim().split('\n')).toHaveLength(1);
    expect((await api.call('GET', '/services/web/logs?timestamps=1')).text).toContain('1970-01-01T00:00:01.000Z web.1');
    expect((await api.call('GET', '/services/web/logs?tail=x')).status).toBe(400);
    expect((await api.call('GET', '/services/web/logs?since=yesterday')).status).toBe(400);
  });
});

describe('logs, following', () => {
  test('streams the lines of tasks that exist and of tasks made later; ends when the service is removed', async () => {
    const api = testApi();
    await api.init();
    await api.call('POST', '/services/create', proc('web'));
    const web = (await api.call('GET', '/services/web')).json;
    const t1 = await api.addTask({ ServiceID: web.ID, Slot: 1 });
    api.logs.set(t1.ID, [{ stream: 'stdout', time: 1, line: 'first' }]);
    const res = await api.app.request('/services/web/logs?follow=1');
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let got = '';
    const until = async (s: string) => {
      while (!got.includes(s)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before "${s}": ${got}`);
        got += dec.decode(value);
      }
    };
    await until('first');
    await api.call('DELETE', '/services/web');
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      got += dec.decode(value);
    }
    expect(got).toContain(`web.1.${t1.ID.slice(0, 12)} | first`);
  });

  test('a new task is followed once it is placed', async () => {
    const api = testApi();
    await api.init();
    await api.call('POST', '/services/create', proc('web'));
    const web = (await api.call('GET', '/services/web')).json;
    const ac = new AbortController();
    const res = await api.app.request('/services/web/logs?follow=1', { signal: ac.signal });
    const reader = res.body!.getReader();
    const store = api.deps.store;
    const id = 'later0000000000000000000a';
    api.logs.set(id, [{ stream: 'stdout', time: 5, line: 'from the new task' }]);
    // Made unplaced (no logs to read yet), then assigned to a node: followed from then on.
    await store.update((tx) => tx.create('tasks', { ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: {}, ServiceID: web.ID, Slot: 1, NodeID: '', Status: { Timestamp: '', State: 'pending', Message: '' }, DesiredState: 'running' }));
    const t = store.get('tasks', id)!;
    await store.update((tx) => tx.update('tasks', { ...t, NodeID: 'n1', Status: { ...t.Status, State: 'assigned' } }));
    const { value } = await reader.read();
    expect(new TextDecoder().decode(value)).toBe(`web.1.${id.slice(0, 12)} | from the new task\n`);
    await api.call('DELETE', '/services/web');
    expect((await reader.read()).done).toBe(true);
  });
});

describe('logs, robustness', () => {
  test('unplaced tasks are skipped; a failing task does not hide the others; one task by /tasks/{id}/logs', async () => {
    const api = testApi();
    await api.init();
    await api.call('POST', '/services/create', proc('web'));
    const web = (await api.call('GET', '/services/web')).json;
    const ok = await api.addTask({ ServiceID: web.ID, Slot: 1 });
    const broken = await api.addTask({ ServiceID: web.ID, Slot: 2 });
    await api.addTask({ ServiceID: web.ID, Slot: 3, NodeID: '', Status: { Timestamp: '', State: 'pending', Message: '' } });
    api.logs.set(ok.ID, [{ stream: 'stdout', time: 1, line: 'fine' }]);
    const real = api.deps.taskLogs;
    api.deps.taskLogs = (t, o) => {
      if (t.ID === broken.ID) throw new Error('node away');
      if (!t.NodeID) throw new Error('unplaced tasks must not be asked');
      return real(t, o);
    };
    const r = await api.call('GET', '/services/web/logs');
    expect(r.text).toBe(`web.1.${ok.ID.slice(0, 12)} | fine\nerror: web.2.${broken.ID.slice(0, 12)}: node away\n`);
    const one = await api.call('GET', `/v1.47/tasks/${ok.ID.slice(0, 8)}/logs`);
    expect(one.text).toBe(`web.1.${ok.ID.slice(0, 12)} | fine\n`);
    expect((await api.call('GET', '/tasks/nope/logs')).status).toBe(404);
  });
});

describe('published ports', () => {
  test('a port another service publishes is a 409 naming it, on create and update; its own port is no clash', async () => {
    const ports = (...p: number[]) => ({ EndpointSpec: { Ports: p.map((n, i) => ({ TargetPort: 80 + i, PublishedPort: n })) } });
    expect((await api.call('POST', '/services/create', proc('a', ports(8080)))).status).toBe(201);
    const taken = await api.call('POST', '/services/create', proc('b', ports(8080)));
    expect(taken.status).toBe(409);
    expect(taken.json.message).toContain('port 8080/tcp is already in use by service "a"');
    expect((await api.call('POST', '/services/create', proc('b', ports(8081)))).status).toBe(201);
    const b = (await api.call('GET', '/services/b')).json;
    expect((await api.call('POST', `/services/b/update?version=${b.Version.Index}`, proc('b', ports(8080)))).status).toBe(409);
    const a = (await api.call('GET', '/services/a')).json;
    expect((await api.call('POST', `/services/a/update?version=${a.Version.Index}`, proc('a', ports(8080, 9000)))).status).toBe(200);
    expect((await api.call('POST', '/services/create', proc('c', ports(7000, 7000)))).json.message).toContain('published twice');
  });
});
