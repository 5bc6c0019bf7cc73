import { afterEach, describe, expect, test } from 'bun:test';
import { ManualClock } from '../../../plugins/mock/clock.ts';
import { encode } from '../../lib/codec.ts';
import { UnavailableError } from '../../lib/errors.ts';
import { memoryStore, type MemoryStore } from '../../store/index.ts';
import { FrameChannel, memoryConnPair } from './conn.ts';
import { SESSION_FRAMES } from './protocol.ts';
import { Dispatcher } from './dispatcher.ts';
import { addNode, addTasks, changeTask, makeTask, RawWorker, waitFor } from './testkit.ts';

let store: MemoryStore;
let clock: ManualClock;
let dispatcher: Dispatcher;

function setup(opts: { heartbeatPeriodMs?: number; maxFrameBytes?: number } = {}) {
  store = memoryStore();
  clock = new ManualClock(1_000_000);
  dispatcher = new Dispatcher({ store, clock, random: () => 0, heartbeatPeriodMs: opts.heartbeatPeriodMs ?? 1000, maxFrameBytes: opts.maxFrameBytes });
  dispatcher.start();
}

afterEach(async () => { await dispatcher?.stop(); });

describe('Dispatcher', () => {
  test('an unknown node gets a clear error frame and the connection is closed', async () => {
    setup();
    const w = new RawWorker(dispatcher);
    await w.register('nobody');
    await waitFor(() => w.closedReason !== null, 'close');
    expect(w.of('session.error')[0]).toEqual({ code: 'unknown-node', message: expect.stringContaining('node nobody is not a member') });
  });

  test('registration marks the node ready with its description and sends the full set once', async () => {
    setup();
    const nodeId = await addNode(store);
    const other = await addNode(store);
    await addTasks(store, [
      makeTask(nodeId), makeTask(nodeId, { state: 'running' }),
      makeTask(nodeId, { state: 'pending' }), // not placed yet
      makeTask(nodeId, { state: 'shutdown', desired: 'remove' }), // terminal and to be removed
      makeTask(other),
    ]);
    const w = new RawWorker(dispatcher);
    await w.register(nodeId);
    const node = store.get('nodes', nodeId)!;
    expect(node.Status.State).toBe('ready');
    expect(node.Description.Hostname).toBe('worker-1');
    expect(w.of('session.registered')[0]).toMatchObject({ nodeId, heartbeatPeriodMs: 1000 });
    await waitFor(() => w.of('assignments').length === 1, 'assignments');
    const a = w.of('assignments')[0]!;
    expect(a.full).toBe(true);
    expect(a.last).toBe(true);
    expect(a.tasks.map((t) => t.Status.State).sort()).toEqual(['assigned', 'running']);
  });

  test('status never moves backwards; stale and foreign updates are dropped; acks follow writes', async () => {
    setup();
    const nodeId = await addNode(store);
    const other = await addNode(store);
    const [t, foreign] = await addTasks(store, [makeTask(nodeId), makeTask(other)]);
    const w = new RawWorker(dispatcher);
    await w.register(nodeId);
    const status = (State: 'accepted' | 'running' | 'preparing') => ({ State, Message: State, Timestamp: new Date().toISOString() });
    w.channel.send({ t: 'tasks.status', b: { sessionId: w.sessionId, seq: 1, updates: [{ taskId: t!.ID, status: status('running') }] } });
    await waitFor(() => w.of('tasks.ack').length === 1, 'ack 1');
    expect(store.get('tasks', t!.ID)!.Status.State).toBe('running');
    w.channel.send({
      t: 'tasks.status',
      b: { sessionId: w.sessionId, seq: 2, updates: [{ taskId: t!.ID, status: status('preparing') }, { taskId: foreign!.ID, status: status('accepted') }] },
    });
    await waitFor(() => w.of('tasks.ack').length === 2, 'ack 2');
    expect(store.get('tasks', t!.ID)!.Status.State).toBe('running');
    expect(store.get('tasks', foreign!.ID)!.Status.State).toBe('assigned');
    expect(dispatcher.stats).toEqual({ statusApplied: 1, statusDropped: 2 });
  });

  test('a worker that lists acks.held gets its acks in the next assignments, after the hold, or at once on a flush frame', async () => {
    setup();
    const nodeId = await addNode(store);
    const [t1, t2, t3] = await addTasks(store, [makeTask(nodeId), makeTask(nodeId), makeTask(nodeId)]);
    const w = new RawWorker(dispatcher);
    await w.register(nodeId, ['acks.held']);
    await waitFor(() => w.of('assignments').length === 1, 'the full set');
    const running = { State: 'running' as const, Message: 'running', Timestamp: new Date().toISOString() };
    const report = (seq: number, taskId: string, flush?: boolean) =>
      w.channel.send({ t: 'tasks.status', b: { sessionId: w.sessionId, seq, updates: [{ taskId, status: running }], ...(flush ? { flush } : {}) } });

    // Held: written, not acknowledged; then it rides in the next assignments frame.
    report(1, t1!.ID);
    await waitFor(() => store.get('tasks', t1!.ID)!.Status.State === 'running', 'status 1 written');
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(w.of('tasks.ack')).toEqual([]);
    await addTasks(store, [makeTask(nodeId)]);
    await waitFor(() => w.of('assignments').length === 2, 'the new task');
    expect(w.of('assignments')[1]!.acks).toEqual([1]);

    // No frame to ride in: one tasks.ack for all held once the hold is over.
    report(2, t2!.ID);
    await waitFor(() => store.get('tasks', t2!.ID)!.Status.State === 'running', 'status 2 written');
    report(3, t3!.ID);
    await waitFor(() => store.get('tasks', t3!.ID)!.Status.State === 'running', 'status 3 written');
    expect(w.of('tasks.ack')).toEqual([]);
    clock.advance(999);
    expect(w.of('tasks.ack')).toEqual([]);
    clock.advance(1);
    await waitFor(() => w.of('tasks.ack').length === 1, 'the held acks');
    expect(w.of('tasks.ack')[0]).toEqual({ seq: 2, more: [3] });

    // A frame marked flush: it and everything held are acknowledged as soon as it is written.
    report(4, t1!.ID);
    w.channel.send({ t: 'tasks.status', b: { sessionId: w.sessionId, seq: 5, updates: [], flush: true } });
    await waitFor(() => w.of('tasks.ack').length === 2, 'the flushed acks');
    expect(w.of('tasks.ack')[1]).toEqual({ seq: 4, more: [5] });
    expect(w.of('assignments').every((a) => a.acks === undefined || a.acks.length > 0)).toBe(true);
  });

  test('a worker that does not list acks.held gets each ack at once', async () => {
    setup();
    const nodeId = await addNode(store);
    const [t] = await addTasks(store, [makeTask(nodeId)]);
    const w = new RawWorker(dispatcher);
    await w.register(nodeId);
    w.channel.send({ t: 'tasks.status', b: { sessionId: w.sessionId, seq: 1, updates: [{ taskId: t!.ID, status: { State: 'running', Message: '', Timestamp: new Date().toISOString() } }] } });
    await waitFor(() => w.of('tasks.ack').length === 1, 'the ack');
    expect(w.of('tasks.ack')[0]).toEqual({ seq: 1 });
  });

  test('many updates are written in few transactions, retrying when another writer conflicts', async () => {
    setup();
    const nodeId = await addNode(store);
    const tasks = await addTasks(store, Array.from({ length: 50 }, () => makeTask(nodeId)));
    const w = new RawWorker(dispatcher);
    await w.register(nodeId);
    let batches = 0;
    const unwatch = store.watch((ev) => { if (ev.kind === 'commit') batches++; });
    const updates = tasks.map((t) => ({ taskId: t.ID, status: { State: 'accepted' as const, Message: 'accepted', Timestamp: '' } }));
    w.channel.send({ t: 'tasks.status', b: { sessionId: w.sessionId, seq: 1, updates } });
    // Another stage writes one of the tasks at the same moment: the dispatcher's transaction conflicts.
    void changeTask(store, tasks[0]!.ID, (t) => ({ ...t, Labels: { touched: 'yes' } }));
    await waitFor(() => w.of('tasks.ack').length === 1, 'ack');
    unwatch();
    expect(tasks.every((t) => store.get('tasks', t.ID)!.Status.State === 'accepted')).toBe(true);
    expect(store.get('tasks', tasks[0]!.ID)!.Labels).toEqual({ touched: 'yes' });
    expect(batches).toBeLessThanOrEqual(3);
  });

  test('frames arriving together share one write; a task reported several times is written once, at its furthest state', async () => {
    setup();
    const nodeId = await addNode(store);
    const tasks = await addTasks(store, Array.from({ length: 10 }, () => makeTask(nodeId)));
    const w = new RawWorker(dispatcher);
    await w.register(nodeId);
    let batches = 0;
    let writes = 0;
    const unwatch = store.watch((ev) => {
      if (ev.kind === 'commit') batches++;
      else if (ev.table === 'tasks') writes++;
    });
    let seq = 0;
    // Each task moves through three states, one frame per report, each frame from a callback of its
    // own: a worker's tasks advance on their own I/O, so their reports arrive in separate callbacks.
    for (const State of ['accepted', 'preparing', 'running'] as const) {
      for (const t of tasks) {
        const b = { sessionId: w.sessionId, seq: ++seq, updates: [{ taskId: t.ID, status: { State, Message: State, Timestamp: '' } }] };
        setTimeout(() => w.channel.send({ t: 'tasks.status', b }), 0);
      }
    }
    await waitFor(() => w.of('tasks.ack').length === seq, 'every frame acknowledged');
    unwatch();
    expect(tasks.every((t) => store.get('tasks', t.ID)!.Status.State === 'running')).toBe(true);
    expect(batches).toBeLessThanOrEqual(2);
    expect(writes).toBeLessThanOrEqual(2 * tasks.length);
  });

  test('a status write the log refuses is not acknowledged; it is written and acknowledged on a later round', async () => {
    setup();
    const nodeId = await addNode(store);
    const [t] = await addTasks(store, [makeTask(nodeId)]);
    const w = new RawWorker(dispatcher);
    await w.register(nodeId);
    const log = store.proposer!;
    let refusals = 1;
    store.proposer = {
      propose: (entry, signal) => (refusals-- > 0 ? Promise.reject(new UnavailableError('no quorum')) : log.propose(entry, signal)),
      readBarrier: (signal) => log.readBarrier!(signal),
    };
    w.channel.send({ t: 'tasks.status', b: { sessionId: w.sessionId, seq: 1, updates: [{ taskId: t!.ID, status: { State: 'running', Message: '', Timestamp: '' } }] } });
    await waitFor(() => refusals < 0, 'the refused write and the one after it');
    await waitFor(() => w.of('tasks.ack').length === 1, 'the ack');
    expect(store.get('tasks', t!.ID)!.Status.State).toBe('running');
  });

  test('changes are sent incrementally; the worker\'s own status coming back sends nothing', async () => {
    setup();
    const nodeId = await addNode(store);
    const [t] = await addTasks(store, [makeTask(nodeId)]);
    const w = new RawWorker(dispatcher);
    await w.register(nodeId);
    await waitFor(() => w.of('assignments').length === 1, 'full set');

    await addTasks(store, [makeTask(nodeId), makeTask(nodeId), makeTask(nodeId)]);
    await waitFor(() => w.of('assignments').length === 2, 'one frame for three tasks');
    expect(w.of('assignments')[1]).toMatchObject({ full: false });
    expect(w.of('assignments')[1]!.tasks).toHaveLength(3);

    w.channel.send({ t: 'tasks.status', b: { sessionId: w.sessionId, seq: 1, updates: [{ taskId: t!.ID, status: { State: 'running', Message: '', Timestamp: '' } }] } });
    await waitFor(() => w.of('tasks.ack').length === 1, 'ack');

    await changeTask(store, t!.ID, (x) => ({ ...x, DesiredState: 'shutdown' }));
    await waitFor(() => w.of('assignments').length === 3, 'desired state change');
    expect(w.of('assignments')[2]!.tasks.map((x) => [x.ID, x.DesiredState])).toEqual([[t!.ID, 'shutdown']]);

    // Terminal and desired remove: it leaves the set.
    w.channel.send({ t: 'tasks.status', b: { sessionId: w.sessionId, seq: 2, updates: [{ taskId: t!.ID, status: { State: 'shutdown', Message: '', Timestamp: '' } }] } });
    await waitFor(() => w.of('tasks.ack').length === 2, 'ack 2');
    await changeTask(store, t!.ID, (x) => ({ ...x, DesiredState: 'remove' }));
    await waitFor(() => w.of('assignments').length === 4, 'removal');
    expect(w.of('assignments')[3]).toEqual({ full: false, last: true, tasks: [], removed: [t!.ID] });
    expect(dispatcher.session(nodeId)).toMatchObject({ tasksSent: 5, assigned: 3 });
  });

  test('the changes of commits applied in one turn reach a node in one frame', async () => {
    setup();
    const nodeId = await addNode(store);
    const other = await addNode(store);
    const w = new RawWorker(dispatcher);
    await w.register(nodeId);
    await waitFor(() => w.of('assignments').length === 1, 'full set');
    // Three transactions proposed together (as writeTasks does) are applied in one turn.
    await Promise.all([
      addTasks(store, [makeTask(nodeId), makeTask(other)]),
      addTasks(store, [makeTask(nodeId)]),
      addTasks(store, [makeTask(nodeId), makeTask(nodeId)]),
    ]);
    await waitFor(() => w.of('assignments').length === 2, 'one frame');
    expect(w.of('assignments')[1]!.tasks).toHaveLength(4);
    // Nothing else follows once the store is still.
    await addTasks(store, [makeTask(other)]);
    expect(w.of('assignments')).toHaveLength(2);
    // A commit in a later turn is a frame of its own.
    await addTasks(store, [makeTask(nodeId)]);
    await waitFor(() => w.of('assignments').length === 3, 'the next frame');
    expect(w.of('assignments')[2]!.tasks).toHaveLength(1);
  });

  test('a node that misses its heartbeats is marked down; heartbeats keep it up', async () => {
    setup();
    const nodeId = await addNode(store);
    const w = new RawWorker(dispatcher);
    await w.register(nodeId);
    for (let i = 0; i < 5; i++) {
      clock.advance(2_000);
      w.channel.send({ t: 'heartbeat', b: { sessionId: w.sessionId } });
      await waitFor(() => w.of('heartbeat.ack').length === i + 1, 'ack');
    }
    expect(store.get('nodes', nodeId)!.Status.State).toBe('ready');
    clock.advance(2_999);
    await Promise.resolve();
    expect(store.get('nodes', nodeId)!.Status.State).toBe('ready');
    clock.advance(1);
    await waitFor(() => store.get('nodes', nodeId)!.Status.State === 'down', 'node down');
    expect(store.get('nodes', nodeId)!.Status.Message).toBe('heartbeat failure');
    await waitFor(() => w.closedReason !== null, 'session closed');
  });

  test('a node ready in the store with no session here when the dispatcher starts (a new leader) gets twice the grace', async () => {
    store = memoryStore();
    clock = new ManualClock(1_000_000);
    const back = await addNode(store);
    const gone = await addNode(store);
    await store.update((tx) => { for (const id of [back, gone]) { const n = tx.get('nodes', id)!; tx.update('nodes', { ...n, Status: { ...n.Status, State: 'ready' } }); } });
    dispatcher = new Dispatcher({ store, clock, random: () => 0, heartbeatPeriodMs: 1000 });
    dispatcher.start();
    clock.advance(5_999); // past one grace (3 × 1 s), short of two
    await Promise.resolve();
    expect(store.get('nodes', gone)!.Status.State).toBe('ready');
    const w = new RawWorker(dispatcher);
    await w.register(back);
    clock.advance(1);
    await waitFor(() => store.get('nodes', gone)!.Status.State === 'down', 'the node that did not come back down');
    expect(store.get('nodes', gone)!.Status.Message).toBe('node did not reconnect to the dispatcher');
    expect(store.get('nodes', back)!.Status.State).toBe('ready');
  });

  test('a closed session marks the node down after the grace period, unless it comes back', async () => {
    setup();
    const nodeId = await addNode(store);
    const w1 = new RawWorker(dispatcher);
    await w1.register(nodeId);
    w1.channel.close('worker went away');
    await waitFor(() => dispatcher.sessions().length === 0, 'session gone');
    clock.advance(2_000);
    const w2 = new RawWorker(dispatcher);
    await w2.register(nodeId);
    clock.advance(2_500); // past the first grace period (cancelled), short of w2's heartbeat deadline
    await Promise.resolve();
    expect(store.get('nodes', nodeId)!.Status.State).toBe('ready');
    w2.channel.close('gone again');
    await waitFor(() => dispatcher.sessions().length === 0, 'session gone');
    clock.advance(3_000);
    await waitFor(() => store.get('nodes', nodeId)!.Status.State === 'down', 'node down');
  });

  test('garbage on the wire closes that connection only', async () => {
    setup();
    const nodeId = await addNode(store);
    const good = new RawWorker(dispatcher);
    await good.register(nodeId);
    const [mine, theirs] = memoryConnPair();
    let closed = '';
    mine.onClose((r) => { closed = r; });
    mine.onData(() => {});
    dispatcher.accept(theirs);
    const body = encode({ t: 'session.register', v: 99, b: {} });
    const frame = new Uint8Array(4 + body.length);
    new DataView(frame.buffer).setUint32(0, body.length);
    frame.set(body, 4);
    mine.write(frame);
    await waitFor(() => closed !== '', 'close');
    expect(dispatcher.sessions().map((s) => s.nodeId)).toEqual([nodeId]);
  });

  test('a second session of the same node replaces the first', async () => {
    setup();
    const nodeId = await addNode(store);
    const w1 = new RawWorker(dispatcher);
    await w1.register(nodeId);
    const w2 = new RawWorker(dispatcher);
    await w2.register(nodeId);
    await waitFor(() => w1.closedReason !== null, 'first closed');
    expect(dispatcher.session(nodeId)!.sessionId).toBe(w2.sessionId);
    clock.advance(10_000 - 1);
    await Promise.resolve();
    // w2 never heartbeated: it is the one that expires, not a leftover of w1.
    expect(dispatcher.sessions()).toHaveLength(0);
  });

  test('a node that registers again as the store has it writes nothing; one that comes back changed is written', async () => {
    setup();
    const nodeId = await addNode(store);
    const w1 = new RawWorker(dispatcher);
    await w1.register(nodeId);
    expect(store.get('nodes', nodeId)!.Status.State).toBe('ready');
    const before = store.get('nodes', nodeId)!;
    let nodeWrites = 0;
    store.watch((ev) => { if (ev.kind !== 'commit' && ev.table === 'nodes') nodeWrites++; });
    // A new leader's fleet coming back: the same node, ready, with the same description.
    const w2 = new RawWorker(dispatcher);
    await w2.register(nodeId);
    expect(dispatcher.session(nodeId)!.sessionId).toBe(w2.sessionId);
    expect(nodeWrites).toBe(0);
    expect(store.get('nodes', nodeId)).toBe(before);
    // Marked down meanwhile: registering writes it ready again.
    await store.update((tx) => tx.update('nodes', { ...store.get('nodes', nodeId)!, Status: { ...before.Status, State: 'down', Message: 'heartbeat failure' } }));
    nodeWrites = 0;
    const w3 = new RawWorker(dispatcher);
    await w3.register(nodeId);
    expect(nodeWrites).toBe(1);
    expect(store.get('nodes', nodeId)!.Status).toMatchObject({ State: 'ready', Message: '' });
  });

  test('a full set larger than one frame is split; only the final part says last', async () => {
    setup({ maxFrameBytes: 8 * 1024 });
    const nodeId = await addNode(store);
    const tasks = await addTasks(store, Array.from({ length: 40 }, () => makeTask(nodeId)));
    const w = new RawWorker(dispatcher);
    await w.register(nodeId);
    await waitFor(() => w.of('assignments').at(-1)?.last === true, 'last part');
    const parts = w.of('assignments');
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.every((p) => p.full)).toBe(true);
    expect(parts.map((p) => p.last)).toEqual([...parts.slice(1).map(() => false), true]);
    expect(parts.flatMap((p) => p.tasks.map((t) => t.ID)).sort()).toEqual(tasks.map((t) => t.ID).sort());
  });

  test('changes larger than one frame are halved until each part fits; every task arrives once, in order', async () => {
    setup({ maxFrameBytes: 8 * 1024 });
    const nodeId = await addNode(store);
    const w = new RawWorker(dispatcher);
    await w.register(nodeId);
    await waitFor(() => w.of('assignments').length === 1, 'the empty full set');
    const tasks = await addTasks(store, Array.from({ length: 40 }, () => makeTask(nodeId)));
    await waitFor(() => w.of('assignments').slice(1).flatMap((p) => p.tasks).length >= 40, 'every task');
    const parts = w.of('assignments').slice(1);
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.every((p) => !p.full && p.last)).toBe(true);
    expect(parts.flatMap((p) => p.tasks.map((t) => t.ID))).toEqual(tasks.map((t) => t.ID));
  });

  test('only the status fields a worker may set reach the store', async () => {
    setup();
    const nodeId = await addNode(store);
    const [t] = await addTasks(store, [makeTask(nodeId)]);
    const w = new RawWorker(dispatcher);
    await w.register(nodeId);
    const status = { State: 'failed', Message: 'exit code 3', Timestamp: '', Err: 'exit code 3', ContainerStatus: { ExitCode: 3, Evil: 1 }, PortStatus: { x: 1 } };
    w.channel.send({ t: 'tasks.status', b: { sessionId: w.sessionId, seq: 1, updates: [{ taskId: t!.ID, status: status as never }] } });
    await waitFor(() => w.of('tasks.ack').length === 1, 'ack');
    const got = store.get('tasks', t!.ID)!.Status;
    expect(got).toEqual({ State: 'failed', Message: 'exit code 3', Err: 'exit code 3', ContainerStatus: { ExitCode: 3 }, Timestamp: new Date(1_000_000).toISOString() });
  });

  test('the node\'s address comes from the transport', async () => {
    setup();
    const nodeId = await addNode(store);
    const [mine, theirs] = memoryConnPair();
    Object.defineProperty(theirs, 'remoteAddr', { value: '/ip4/10.0.0.7/tcp/4242' });
    const ch = new FrameChannel(mine, SESSION_FRAMES);
    ch.onMessage(() => {});
    dispatcher.accept(theirs);
    ch.send({ t: 'session.register', b: { nodeId, description: { Hostname: 'h' } as never } });
    await waitFor(() => store.get('nodes', nodeId)!.Status.State === 'ready', 'ready');
    expect(store.get('nodes', nodeId)!.Status.Addr).toBe('/ip4/10.0.0.7/tcp/4242');
  });

  test('fuzz: random bytes and random well-framed messages never break the dispatcher', async () => {
    setup();
    const nodeId = await addNode(store);
    const [t] = await addTasks(store, [makeTask(nodeId)]);
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const values = [null, 0, -1, 1e308, 'x', '', [], {}, [1, 'a'], { State: 'running' }, true, nodeId, t!.ID, 'running'];
    const pick = () => values[Math.floor(rand() * values.length)];
    const types = ['session.register', 'heartbeat', 'tasks.status', 'logs.line', 'logs.end', 'assignments', 'bogus'];
    for (let round = 0; round < 200; round++) {
      const [mine, theirs] = memoryConnPair({ chunkBytes: 1 + Math.floor(rand() * 16) });
      mine.onData(() => {});
      dispatcher.accept(theirs);
      let bytes: Uint8Array;
      if (round % 3 === 0) {
        bytes = new Uint8Array(1 + Math.floor(rand() * 64)).map(() => Math.floor(rand() * 256));
      } else {
        const b: Record<string, unknown> = {};
        for (const k of ['nodeId', 'description', 'sessionId', 'seq', 'updates', 'requestId', 'lines', 'Hostname']) if (rand() < 0.6) b[k] = pick();
        if (round % 3 === 2) { b.nodeId = nodeId; b.description = { Hostname: pick(), Runtimes: pick(), Platform: pick() }; }
        const body = encode({ t: types[Math.floor(rand() * types.length)], v: rand() < 0.9 ? 1 : 2, b });
        bytes = new Uint8Array(4 + body.length);
        new DataView(bytes.buffer).setUint32(0, body.length);
        bytes.set(body, 4);
      }
      mine.write(bytes);
      await new Promise((r) => setImmediate(r));
      mine.close();
    }
    // Still serving: a proper worker registers and can report.
    const w = new RawWorker(dispatcher);
    await w.register(nodeId);
    w.channel.send({ t: 'tasks.status', b: { sessionId: w.sessionId, seq: 1, updates: [{ taskId: t!.ID, status: { State: 'accepted', Message: '', Timestamp: '' } }] } });
    await waitFor(() => w.of('tasks.ack').length === 1, 'ack');
    expect(store.get('tasks', t!.ID)!.Status.State).toBe('accepted');
  });

  test('without an explicit period, the cluster\'s Dispatcher.HeartbeatPeriod applies', async () => {
    store = memoryStore();
    clock = new ManualClock(0);
    dispatcher = new Dispatcher({ store, clock, random: () => 0 });
    dispatcher.start();
    expect(dispatcher.heartbeatPeriodMs).toBe(1000);
    await store.update((tx) => tx.create('clusters', {
      ID: 'c', Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', JoinTokens: { Worker: '', Manager: '' },
      Spec: { Name: 'default', Orchestration: { TaskHistoryRetentionLimit: 5 }, Raft: { SnapshotInterval: 1e4, ElectionTick: 10, HeartbeatTick: 1 }, Dispatcher: { HeartbeatPeriod: 5e9 }, CAConfig: { NodeCertExpiry: 0 } },
    }));
    expect(dispatcher.heartbeatPeriodMs).toBe(5000);
    const nodeId = await addNode(store);
    const w = new RawWorker(dispatcher);
    await w.register(nodeId);
    expect(w.of('session.registered')[0]!.heartbeatPeriodMs).toBe(5000);
    clock.advance(14_999);
    await Promise.resolve();
    expect(store.get('nodes', nodeId)!.Status.State).toBe('ready');
    clock.advance(1);
    await waitFor(() => store.get('nodes', nodeId)!.Status.State === 'down', 'down after 3 × 5 s');
  });

  test('a worker that floods status past the backlog bound is told so and disconnected', async () => {
    store = memoryStore();
    clock = new ManualClock(0);
    dispatcher = new Dispatcher({ store, clock, maxStatusBacklog: 2 });
    dispatcher.start();
    const nodeId = await addNode(store);
    const tasks = await addTasks(store, [makeTask(nodeId), makeTask(nodeId), makeTask(nodeId)]);
    const w = new RawWorker(dispatcher);
    await w.register(nodeId);
    const updates = tasks.map((t) => ({ taskId: t.ID, status: { State: 'accepted' as const, Message: '', Timestamp: '' } }));
    w.channel.send({ t: 'tasks.status', b: { sessionId: w.sessionId, seq: 1, updates } });
    await waitFor(() => w.closedReason !== null, 'closed');
    expect(w.of('session.error')[0]!.code).toBe('overloaded');
  });
});
