import { describe, expect, test } from 'bun:test';
import { memoryStore } from '../store/index.ts';
import type { SwarmEvent } from './event-derive.ts';
import { EventLog } from './event-log.ts';
import { eventsRoutes } from './events.ts';
import { proc, testApi } from './test-helper.ts';

const ev = (n: number): SwarmEvent => ({ Type: 'service', Action: 'update', Actor: { ID: `s${n}`, Attributes: {} }, scope: 'swarm', time: n, timeNano: BigInt(n) * 1_000_000_000n });

describe('EventLog', () => {
  test('the ring keeps the newest `history` events', () => {
    const log = new EventLog(memoryStore(), 10);
    for (let i = 1; i <= 25; i++) log.publish(ev(i));
    expect(log.replay(0n).map((e) => e.time)).toEqual([16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
    expect(log.replay(20_000_000_000n, 22_000_000_000n).map((e) => e.time)).toEqual([20, 21, 22]);
  });

  test('a subscriber that falls more than its bound behind is dropped after what it had queued', async () => {
    const log = new EventLog(memoryStore());
    const sub = log.subscribe(() => true, 3);
    for (let i = 1; i <= 10; i++) log.publish(ev(i));
    expect(sub.lagged).toBe(true);
    expect(sub.queued).toBe(3);
    expect(log.subscribers).toBe(0);
    expect((await sub.take()).map((e) => e.time)).toEqual([1, 2, 3]);
    expect(await sub.take()).toEqual([]);
  });

  test("a removed service's tasks are still named by it", async () => {
    const api = testApi();
    await api.init();
    const log = new EventLog(api.deps.store);
    const id = (await api.call('POST', '/services/create', proc('web'))).json.ID as string;
    const t = await api.addTask({ ServiceID: id });
    await api.call('DELETE', `/services/${id}`);
    await api.deps.store.update((tx) => tx.update('tasks', { ...t, Status: { ...t.Status, State: 'shutdown' } }));
    const last = log.replay(0n).at(-1)!;
    expect(last).toMatchObject({ Type: 'task', Action: 'shutdown', Actor: { Attributes: { service: 'web', name: 'web.1' } } });
  });

  test('with nobody subscribed, changes are kept as they are and replayed as the events a subscriber got', async () => {
    const api = testApi();
    await api.init();
    const watched = new EventLog(api.deps.store);
    const sub = watched.subscribe(() => true, 100);
    const unwatched = new EventLog(api.deps.store);
    const id = (await api.call('POST', '/services/create', proc('web'))).json.ID as string;
    const t = await api.addTask({ ServiceID: id, Status: { Timestamp: new Date().toISOString(), State: 'pending', Message: 'waiting' } });
    const running = { ...t, Status: { ...t.Status, State: 'running' as const } };
    await api.deps.store.update((tx) => tx.update('tasks', running));
    // Not an event: the state stays where it was.
    await api.deps.store.update((tx) => tx.update('tasks', { ...api.deps.store.get('tasks', t.ID)!, DesiredState: 'shutdown' }));
    await api.call('DELETE', `/services/${id}`);
    await api.deps.store.update((tx) => tx.update('tasks', { ...api.deps.store.get('tasks', t.ID)!, Status: { ...t.Status, State: 'shutdown' } }));
    const got = await sub.take();
    expect(got.map((e) => `${e.Type} ${e.Action}`)).toEqual(expect.arrayContaining(['service create', 'task running', 'service remove', 'task shutdown']));
    expect(got.filter((e) => e.Type === 'task').map((e) => e.Action)).toEqual(['pending', 'running', 'shutdown']);
    expect(unwatched.replay(0n)).toEqual(got);
    expect(unwatched.replay(0n)).toEqual(watched.replay(0n));
    // Replayed again (each kept change is derived once, then kept as its event): the same.
    expect(unwatched.replay(0n)).toEqual(got);
    const at = got.at(-1)!.timeNano;
    expect(unwatched.replay(at, at)).toEqual(got.filter((e) => e.timeNano === at));
  });

  test('the ring counts events only: task writes that leave the state alone take no room', async () => {
    const api = testApi();
    await api.init();
    const log = new EventLog(api.deps.store, 3);
    const id = (await api.call('POST', '/services/create', proc('web'))).json.ID as string;
    const t = await api.addTask({ ServiceID: id });
    for (const state of ['assigned', 'accepted', 'preparing', 'starting', 'running'] as const) {
      await api.deps.store.update((tx) => tx.update('tasks', { ...api.deps.store.get('tasks', t.ID)!, Status: { ...t.Status, State: state } }));
      for (let i = 0; i < 3; i++) await api.deps.store.update((tx) => tx.update('tasks', { ...api.deps.store.get('tasks', t.ID)!, RestartAttempts: i }));
    }
    expect(log.replay(0n).map((e) => e.Action)).toEqual(['preparing', 'starting', 'running']);
  });

  test('a subscriber that keeps up is never dropped', async () => {
    const log = new EventLog(memoryStore());
    const sub = log.subscribe((e) => e.time % 2 === 0, 2);
    for (let i = 1; i <= 100; i++) {
      log.publish(ev(i));
      if (i % 4 === 0) expect((await sub.take()).length).toBe(2);
    }
    expect(sub.lagged).toBe(false);
  });
});

async function lines(res: Response, n: number): Promise<any[]> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let text = '';
  while (text.split('\n').filter(Boolean).length < n) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
  }
  await reader.cancel();
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

describe('GET /events', () => {
  test('history with since/until: service create, update, remove and task state changes', async () => {
    const api = testApi();
    await api.init();
    const created = await api.call('POST', '/services/create', proc('web'));
    const id = created.json.ID as string;
    const svc = api.deps.store.get('services', id)!;
    await api.call('POST', `/services/${id}/update?version=${svc.Version.Index}`, { ...svc.Spec, Labels: { a: 'b' } });
    const t = await api.addTask({ ServiceID: id, Status: { State: 'new', Timestamp: '', Message: 'created' } });
    await api.deps.store.update((tx) => tx.update('tasks', { ...t, Status: { ...t.Status, State: 'running' } }));
    await api.call('DELETE', `/services/${id}`);
    const until = (Date.now() / 1000).toFixed(3); // in the past by the time it is served: history, then the end
    const res = await api.app.request(`/v1.47/events?since=0&until=${until}&filters=${encodeURIComponent('{"type":["service","task"]}')}`);
    expect(res.status).toBe(200);
    const got = (await res.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const seen = got.map((e) => `${e.Type} ${e.Action}`);
    expect(seen).toContain('service create');
    expect(seen).toContain('service update');
    expect(seen).toContain('service remove');
    expect(seen).toContain('task new');
    expect(seen).toContain('task running');
    expect(got.find((e) => e.Action === 'running').Actor.Attributes).toMatchObject({ service: 'web', name: 'web.1', 'state.old': 'new', 'state.new': 'running' });
    expect(got.every((e) => e.scope === 'swarm' && typeof e.timeNano === 'number')).toBe(true);
  });

  test('a stream sees an event made after it connected, and only what its filter wants', async () => {
    const api = testApi();
    await api.init();
    const res = await api.app.request(`/events?filters=${encodeURIComponent('{"service":["web"]}')}`);
    expect(res.status).toBe(200);
    const got = lines(res, 1);
    await api.call('POST', '/services/create', proc('other'));
    await api.call('POST', '/services/create', proc('web'));
    const [e] = await got;
    expect(e).toMatchObject({ Type: 'service', Action: 'create', Actor: { Attributes: { name: 'web' } } });
  });

  test('bad filters and times are 400 naming them', async () => {
    const api = testApi();
    expect((await api.call('GET', '/events?filters={x')).status).toBe(400);
    const r = await api.call('GET', `/events?filters=${encodeURIComponent('{"colour":["x"]}')}`);
    expect(r.status).toBe(400);
    expect(r.json.message).toContain('colour');
    expect((await api.call('GET', '/events?until=soon')).json.message).toContain('until="soon"');
  });

  test('a client that stops reading is dropped with a last line saying so', async () => {
    const store = memoryStore();
    const log = new EventLog(store);
    const app = eventsRoutes({ store } as never, log);
    const res = await app.request('/events');
    const reader = res.body!.getReader();
    for (let i = 0; i < 2_000; i++) log.publish(ev(i));
    expect(log.subscribers).toBe(0);
    const dec = new TextDecoder();
    let text = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += dec.decode(r.value, { stream: true });
    const all = text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    expect(all.length).toBe(1_001);
    expect(all.at(-1).error).toContain('fell more than 1000 events behind');
  });
});
