import { afterEach, describe, expect, test } from 'bun:test';
import { ManualClock } from '../../plugins/mock/clock.ts';
import type { Message } from '../lib/frames.ts';
import { FrameChannel } from '../manager/dispatcher/conn.ts';
import { Dispatcher } from '../manager/dispatcher/dispatcher.ts';
import { SESSION_FRAMES, type SessionMessages } from '../manager/dispatcher/protocol.ts';
import { addNode, description } from '../manager/dispatcher/testkit.ts';
import { memoryStore } from '../store/index.ts';
import { dispatcherConnector, serveDispatcher } from './dispatcher.ts';
import { type TestNode, testCluster, testNode, waitFor } from './testkit.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup() {
  const cluster = await testCluster();
  const store = memoryStore();
  const dispatcher = new Dispatcher({ store, clock: new ManualClock(1_000_000), random: () => 0, heartbeatPeriodMs: 1000 });
  dispatcher.start();
  const m1 = await testNode(cluster, 'm1', 'manager');
  const w1 = await testNode(cluster, 'w1', 'worker');
  cleanups.push(async () => { await dispatcher.stop(); await m1.stop(); await w1.stop(); });
  await addNode(store, 'w1');
  await addNode(store, 'w2');
  await serveDispatcher(m1.guard, dispatcher);
  return { cluster, dispatcher, m1, w1 };
}

async function register(w: TestNode, m: TestNode, nodeId: string) {
  const connect = dispatcherConnector(w.guard, () => [m.addr]);
  const ch = new FrameChannel(await connect(AbortSignal.timeout(10_000)), SESSION_FRAMES);
  const got: Message<SessionMessages>[] = [];
  ch.onMessage((msg) => got.push(msg));
  ch.send({ t: 'session.register', b: { nodeId, description: description() } });
  return { ch, got };
}

describe('dispatcher session over libp2p', () => {
  test('a worker registers as the node its certificate names', async () => {
    const { dispatcher, m1, w1 } = await setup();
    const { got } = await register(w1, m1, 'w1');
    await waitFor(() => got.some((m) => m.t === 'session.registered'), 'registered');
    expect(dispatcher.session('w1')).toBeDefined();
  });

  test('a worker claiming another node id is refused', async () => {
    const { dispatcher, m1, w1 } = await setup();
    const { got } = await register(w1, m1, 'w2');
    await waitFor(() => got.some((m) => m.t === 'session.error'), 'refused');
    const err = got.find((m) => m.t === 'session.error')!;
    expect(err.b).toMatchObject({ code: 'bad-request' });
    expect((err.b as { message: string }).message).toMatch(/authenticated as node w1, not w2/);
    expect(dispatcher.session('w2')).toBeUndefined();
  });

  test('no reachable manager: a clear error naming each address tried', async () => {
    const { w1, m1 } = await setup();
    const addr = m1.addr;
    await m1.stop();
    const connect = dispatcherConnector(w1.guard, () => [addr]);
    await expect(connect(AbortSignal.timeout(10_000))).rejects.toThrow(/no manager answered \(\/ip4\/127\.0\.0\.1\/tcp\/\d+/);
    await expect(dispatcherConnector(w1.guard, () => [])(AbortSignal.timeout(1000))).rejects.toThrow(/join the cluster first/);
  });
});
