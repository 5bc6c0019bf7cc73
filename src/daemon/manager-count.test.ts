import { afterEach, describe, expect, test } from 'bun:test';
import { ManualClock } from '../manager/stage.ts';
import { makeNode, settle } from '../manager/testkit.ts';
import { type MemoryStore, memoryStore } from '../store/index.ts';
import { type ManagersSpec, type Node, NS_PER_S } from '../types/index.ts';
import { defaultClusterSpec, initCluster } from './cluster.ts';
import { description } from '../manager/dispatcher/testkit.ts';
import { desiredManagers, ManagerCount } from './manager-count.ts';
import { mergeClusterSpec } from '../api/cluster-spec.ts';

let stage: ManagerCount | null = null;
afterEach(async () => {
  await stage?.stop();
  stage = null;
});

const LEADER = 'leader';

function node(id: string, o: { role?: 'manager' | 'worker'; state?: Node['Status']['State']; reach?: 'reachable' | 'unreachable' | 'unknown'; domain?: string; availability?: Node['Spec']['Availability'] } = {}): Node {
  const n = makeNode({ id, hostname: id, role: o.role ?? 'worker', state: o.state ?? 'ready', availability: o.availability, labels: o.domain ? { 'failure-domain': o.domain } : {} });
  return {
    ...n,
    AdvertiseAddr: `10.0.0.1:${id.length}`,
    ...(n.Spec.Role === 'manager' ? { ManagerStatus: { Leader: id === LEADER, Reachability: o.reach ?? 'reachable', Addr: 'x' } } : {}),
  };
}

async function setup(nodes: Node[], managers?: ManagersSpec): Promise<{ store: MemoryStore; clock: ManualClock; logs: string[] }> {
  const store = memoryStore();
  const clock = new ManualClock();
  const logs: string[] = [];
  await store.update((tx) => {
    tx.create('clusters', { ID: 'c', Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: { ...defaultClusterSpec(), ...(managers ? { Managers: managers } : {}) }, JoinTokens: { Worker: '', Manager: '' } });
    for (const n of nodes) tx.create('nodes', n);
  });
  stage = new ManagerCount({ store, clock, selfId: LEADER, log: (m) => logs.push(m), onError: (_s, e) => { throw e; } });
  stage.start();
  await settle(store);
  return { store, clock, logs };
}

const managerIds = (store: MemoryStore) => store.list('nodes').filter((n) => n.Spec.Role === 'manager').map((n) => n.ID).sort();

/** What the node would do once promoted: join raft and show as a reachable voter. */
async function becomeVoter(store: MemoryStore, id: string): Promise<void> {
  await store.update((tx) => {
    const n = tx.get('nodes', id)!;
    tx.update('nodes', { ...n, ManagerStatus: { ...n.ManagerStatus!, Reachability: 'reachable' } });
  });
  await settle(store);
}

async function setNode(store: MemoryStore, id: string, fn: (n: Node) => Node): Promise<void> {
  await store.update((tx) => tx.update('nodes', fn(tx.get('nodes', id)!)));
  await settle(store);
}

describe('desiredManagers', () => {
  test('automatic: min(3, nodes), odd; asked: rounded down to odd, at most 7 and the node count', () => {
    expect([1, 2, 3, 4, 10].map((n) => desiredManagers(undefined, n))).toEqual([1, 1, 3, 3, 3]);
    expect(desiredManagers({ Desired: 0 }, 5)).toBe(3);
    expect(desiredManagers({ Desired: 5 }, 10)).toBe(5);
    expect(desiredManagers({ Desired: 4 }, 10)).toBe(3);
    expect(desiredManagers({ Desired: 9 }, 20)).toBe(7);
    expect(desiredManagers({ Desired: 5 }, 4)).toBe(3);
  });
});

test('initCluster keeps Spec.Managers as given', async () => {
  const store = memoryStore();
  const c = await initCluster(store, 'n1', description(), { Managers: { Desired: 5, LostGracePeriod: 2 * NS_PER_S, FailureDomainLabel: 'zone' } });
  expect(c.Spec.Managers).toEqual({ Desired: 5, LostGracePeriod: 2 * NS_PER_S, FailureDomainLabel: 'zone' });
});

describe('ManagerCount', () => {
  test('one manager and two workers: promotes one worker, then the next once the first is a voter', async () => {
    const { store } = await setup([node(LEADER, { role: 'manager' }), node('w1'), node('w2')]);
    expect(managerIds(store)).toEqual(['leader', 'w1']);
    const w1 = store.get('nodes', 'w1')!;
    expect(w1.ManagerStatus).toEqual({ Leader: false, Reachability: 'unknown', Addr: w1.AdvertiseAddr! });
    await becomeVoter(store, 'w1');
    expect(managerIds(store)).toEqual(['leader', 'w1', 'w2']);
    await becomeVoter(store, 'w2');
    expect(managerIds(store)).toEqual(['leader', 'w1', 'w2']);
  });

  test('prefers a worker in a failure domain no manager is in; skips workers that are down, drained or paused', async () => {
    const { store } = await setup([
      node(LEADER, { role: 'manager', domain: 'a' }),
      node('m2', { role: 'manager', domain: 'b' }),
      node('w1', { domain: 'a' }),
      node('w2', { domain: 'b' }),
      node('w3', { domain: 'c', state: 'down' }),
      node('w4', { domain: 'd', availability: 'drain' }),
      node('w5', { domain: 'e' }),
    ]);
    expect(managerIds(store)).toEqual(['leader', 'm2', 'w5']);
  });

  test('a lost manager is replaced only after the grace period, then demoted as surplus', async () => {
    const { store, clock, logs } = await setup(
      [node(LEADER, { role: 'manager' }), node('m2', { role: 'manager' }), node('m3', { role: 'manager' }), node('w1')],
      { LostGracePeriod: 10 * NS_PER_S },
    );
    expect(managerIds(store)).toEqual(['leader', 'm2', 'm3']);
    await setNode(store, 'm3', (n) => ({ ...n, Status: { State: 'down' }, ManagerStatus: { ...n.ManagerStatus!, Reachability: 'unreachable' } }));
    clock.advance(9_999);
    await settle(store);
    expect(managerIds(store)).toEqual(['leader', 'm2', 'm3']);
    clock.advance(1);
    await settle(store);
    expect(managerIds(store)).toEqual(['leader', 'm2', 'm3', 'w1']);
    await becomeVoter(store, 'w1');
    expect(managerIds(store)).toEqual(['leader', 'm2', 'w1']);
    expect(store.get('nodes', 'm3')!.Spec.Role).toBe('worker');
    expect(logs.some((l) => l.includes('promoting w1'))).toBe(true);
    expect(logs.some((l) => l.includes('demoting m3') && l.includes('lost'))).toBe(true);
  });

  test('a replaced manager that comes back is the one demoted, not a manager that stayed up', async () => {
    const { store, clock, logs } = await setup(
      [node(LEADER, { role: 'manager' }), node('m2', { role: 'manager' }), node('m3', { role: 'manager' }), node('w1')],
      { Desired: 3, LostGracePeriod: 10 * NS_PER_S },
    );
    await setNode(store, 'm3', (n) => ({ ...n, Status: { State: 'down' }, ManagerStatus: { ...n.ManagerStatus!, Reachability: 'unreachable' } }));
    clock.advance(10_000);
    await settle(store);
    expect(managerIds(store)).toEqual(['leader', 'm2', 'm3', 'w1']);
    // m3 is back before its replacement has joined raft.
    await setNode(store, 'm3', (n) => ({ ...n, Status: { State: 'ready' }, ManagerStatus: { ...n.ManagerStatus!, Reachability: 'reachable' } }));
    await becomeVoter(store, 'w1');
    expect(managerIds(store)).toEqual(['leader', 'm2', 'w1']);
    expect(logs.some((l) => l.includes('demoting m3'))).toBe(true);
  });

  test('a manager back within the grace period is kept', async () => {
    const { store, clock } = await setup(
      [node(LEADER, { role: 'manager' }), node('m2', { role: 'manager' }), node('m3', { role: 'manager' }), node('w1')],
      { LostGracePeriod: 10 * NS_PER_S },
    );
    await setNode(store, 'm3', (n) => ({ ...n, Status: { State: 'down' } }));
    clock.advance(5_000);
    await setNode(store, 'm3', (n) => ({ ...n, Status: { State: 'ready' } }));
    clock.advance(10_000);
    await settle(store);
    expect(managerIds(store)).toEqual(['leader', 'm2', 'm3']);
  });

  test('surplus managers are demoted, never the leader; the desired count comes from the spec', async () => {
    const { store } = await setup(
      [node(LEADER, { role: 'manager' }), node('m2', { role: 'manager' }), node('m3', { role: 'manager' }), node('m4', { role: 'manager' }), node('m5', { role: 'manager' })],
      { Desired: 1 },
    );
    expect(managerIds(store)).toEqual(['leader']);
  });

  test('automatic mode: managers joined by token are kept; only lost surplus managers are demoted', async () => {
    const { store } = await setup([node(LEADER, { role: 'manager' }), node('m2', { role: 'manager' }), node('m3', { role: 'manager' }), node('m4', { role: 'manager' })]);
    expect(managerIds(store)).toEqual(['leader', 'm2', 'm3', 'm4']);
  });

  test('Desired < 0 turns it off', async () => {
    const { store } = await setup([node(LEADER, { role: 'manager' }), node('w1'), node('w2')], { Desired: -1 });
    expect(managerIds(store)).toEqual(['leader']);
  });

  test('Desired back to 0 (POST /swarm/update after a promote/demote by hand): automatic again, the leader promotes', async () => {
    const { store } = await setup([node(LEADER, { role: 'manager' }), node('w1'), node('w2')], { Desired: -1, LostGracePeriod: 2 * NS_PER_S });
    expect(managerIds(store)).toEqual(['leader']);
    await store.update((tx) => {
      const c = tx.get('clusters', 'c')!;
      tx.update('clusters', { ...c, Spec: mergeClusterSpec(c.Spec, { Managers: { Desired: 0 } }) });
    });
    await settle(store);
    expect(managerIds(store)).toHaveLength(2); // one at a time: the second waits for the first to be a voter
    expect(store.list('clusters')[0]!.Spec.Managers).toEqual({ Desired: 0, LostGracePeriod: 2 * NS_PER_S });
    await becomeVoter(store, managerIds(store).find((id) => id !== LEADER)!);
    expect(managerIds(store)).toEqual(['leader', 'w1', 'w2']);
  });

  test('nothing changes without a reachable majority of voters', async () => {
    const { store, clock, logs } = await setup(
      [node(LEADER, { role: 'manager' }), node('m2', { role: 'manager', reach: 'unreachable', state: 'down' }), node('m3', { role: 'manager', reach: 'unreachable', state: 'down' }), node('w1'), node('w2')],
      { LostGracePeriod: NS_PER_S },
    );
    clock.advance(60_000);
    await settle(store);
    expect(managerIds(store)).toEqual(['leader', 'm2', 'm3']);
    expect(logs.some((l) => l.includes('only 1 of 3 voting managers are reachable'))).toBe(true);
  });

  test('a demotion that would leave the reachable voters without a majority is not made', async () => {
    // Desired 1 with an unreachable (not yet lost) voter: demoting m2 would leave {leader, m3(unreachable)}.
    const { store } = await setup(
      [node(LEADER, { role: 'manager' }), node('m2', { role: 'manager' }), node('m3', { role: 'manager', reach: 'unreachable' })],
      { Desired: 1, LostGracePeriod: 10 * NS_PER_S },
    );
    // m3 goes first (unreachable), then m2.
    expect(managerIds(store)).toEqual(['leader']);
    expect(store.get('nodes', 'm3')!.Spec.Role).toBe('worker');
  });

  test('a promoted worker that never becomes a voter is replaced after the grace period', async () => {
    const { store, clock } = await setup([node(LEADER, { role: 'manager' }), node('m2', { role: 'manager' }), node('w1'), node('w2')], { LostGracePeriod: 10 * NS_PER_S });
    // 4 hosts → 3 managers: w1 is promoted first and stays unknown (it never joins raft).
    expect(managerIds(store)).toEqual(['leader', 'm2', 'w1']);
    clock.advance(9_999);
    await settle(store);
    expect(managerIds(store)).toEqual(['leader', 'm2', 'w1']);
    clock.advance(1);
    await settle(store);
    expect(managerIds(store)).toEqual(['leader', 'm2', 'w1', 'w2']);
    await becomeVoter(store, 'w2');
    expect(managerIds(store)).toEqual(['leader', 'm2', 'w2']);
  });

  test('with no worker to promote it says so and waits', async () => {
    const { store, clock, logs } = await setup(
      [node(LEADER, { role: 'manager' }), node('m2', { role: 'manager' }), node('m3', { role: 'manager', state: 'down', reach: 'unreachable' })],
      { LostGracePeriod: NS_PER_S },
    );
    clock.advance(1_000);
    await settle(store);
    expect(managerIds(store)).toEqual(['leader', 'm2', 'm3']);
    expect(logs.some((l) => l.includes('no ready, active worker to promote'))).toBe(true);
  });
});
