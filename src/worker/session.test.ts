/** The session client against a scripted manager end: what a real dispatcher would not do. */
import { describe, expect, test } from 'bun:test';
import { ManualClock } from '../../plugins/mock/clock.ts';
import type { Message } from '../lib/frames.ts';
import { type Conn, FrameChannel, memoryConnPair } from '../manager/dispatcher/conn.ts';
import { SESSION_FRAMES, type SessionMessages } from '../manager/dispatcher/protocol.ts';
import { description, waitFor } from '../manager/dispatcher/testkit.ts';
import type { SessionHint } from './manager-order.ts';
import { SessionClient, type SessionHandlers } from './session.ts';

type Msg = Message<SessionMessages>;

/** A manager end that registers every worker and records what it gets; acks only when told to. */
class ScriptedManager {
  readonly channels: FrameChannel<SessionMessages>[] = [];
  readonly received: Msg[] = [];
  ackHeartbeats = true;
  /** Hold status acks (as a dispatcher does for a worker that lists `acks.held`) instead of sending each. */
  holdAcks = false;
  held: number[] = [];

  connect = async (): Promise<Conn> => {
    const [worker, manager] = memoryConnPair();
    const ch = new FrameChannel(manager, SESSION_FRAMES);
    this.channels.push(ch);
    ch.onMessage((m) => {
      this.received.push(m);
      if (m.t === 'session.register') {
        ch.send({ t: 'session.registered', b: { sessionId: `s${this.channels.length}`, nodeId: m.b.nodeId, heartbeatPeriodMs: 1000, managers: ['/ip4/10.0.0.1'] } });
      } else if (m.t === 'heartbeat' && this.ackHeartbeats) {
        ch.send({ t: 'heartbeat.ack', b: { heartbeatPeriodMs: 1000 } });
      } else if (m.t === 'tasks.status') {
        if (this.holdAcks && !m.b.flush) this.held.push(m.b.seq);
        else ch.send({ t: 'tasks.ack', b: { seq: m.b.seq } });
      }
    });
    return worker;
  };

  of<K extends keyof SessionMessages>(t: K): SessionMessages[K][] {
    return this.received.filter((m) => m.t === t).map((m) => m.b as SessionMessages[K]);
  }
}

const quiet: SessionHandlers = { registered() {}, assignments() {}, logsRequest() {}, logsCancel() {}, closed() {} };

function client(connect: (signal: AbortSignal, hint?: SessionHint) => Promise<Conn>, clock: ManualClock, handlers: Partial<SessionHandlers> = {}) {
  return new SessionClient({
    nodeId: 'n1', connect, clock, random: () => 0.5,
    description: async () => description(),
    handlers: { ...quiet, ...handlers },
    backoff: { initialMs: 100, maxMs: 1000, factor: 2 },
  });
}

describe('SessionClient', () => {
  test('a dispatcher that stops answering heartbeats is left, and the client registers again', async () => {
    const m = new ScriptedManager();
    const clock = new ManualClock(0);
    const s = client(m.connect, clock);
    s.start();
    expect(await s.registered(1000)).toBe(true);
    expect(s.managers).toEqual(['/ip4/10.0.0.1']);
    clock.advance(1000);
    await waitFor(() => m.of('heartbeat').length === 1, 'first heartbeat');
    m.ackHeartbeats = false;
    clock.advance(1000);
    await waitFor(() => m.of('heartbeat').length === 2, 'second heartbeat');
    clock.advance(3000); // three periods without an ack
    await waitFor(() => !s.connected, 'session given up');
    for (let i = 0; i < 20 && m.channels.length < 2; i++) { clock.advance(100); await new Promise((r) => setImmediate(r)); }
    expect(await s.registered(1000, 2)).toBe(true);
    await s.stop();
  });

  test('status reported in one turn leaves in one frame; it waits for a session and is re-sent on the next', async () => {
    const m = new ScriptedManager();
    const clock = new ManualClock(0);
    const s = client(m.connect, clock);
    const st = (State: 'accepted' | 'running') => ({ State, Message: State, Timestamp: '' });
    s.report('t1', st('accepted'));
    s.report('t2', st('accepted'));
    s.report('t1', st('running')); // only the latest per task
    s.start();
    await s.registered(1000);
    await waitFor(() => m.of('tasks.status').length === 1, 'status frame');
    expect(m.of('tasks.status')[0]!.updates).toEqual([{ taskId: 't1', status: st('running') }, { taskId: 't2', status: st('accepted') }]);
    expect(await s.flushed(1000)).toBe(true);
    await s.stop();
  });

  test('held acks: taken from assignments and from one tasks.ack for several; flushed() asks with a flush frame', async () => {
    const m = new ScriptedManager();
    m.holdAcks = true;
    const clock = new ManualClock(0);
    const s = client(m.connect, clock);
    s.start();
    await s.registered(1000);
    expect(m.of('session.register')[0]!.accepts).toContain('acks.held');
    const st = { State: 'running' as const, Message: '', Timestamp: '' };
    for (const id of ['t1', 't2', 't3']) {
      s.report(id, st);
      await waitFor(() => m.of('tasks.status').length === Number(id.slice(1)), `report ${id}`);
    }
    expect(s.unsentStatus).toBe(3);
    const ch = m.channels[0]!;
    ch.send({ t: 'assignments', b: { full: false, last: true, tasks: [], removed: [], acks: [1] } });
    await waitFor(() => s.unsentStatus === 2, 'the ack in assignments');
    ch.send({ t: 'tasks.ack', b: { seq: 2, more: [3] } });
    await waitFor(() => s.unsentStatus === 0, 'two acks in one frame');

    // flushed() with a report still held: an empty frame marked flush, and the manager's acks.
    s.report('t4', st);
    await waitFor(() => m.of('tasks.status').length === 4, 'report t4');
    const flushed = s.flushed(2000);
    await waitFor(() => m.of('tasks.status').length === 5, 'the flush frame');
    expect(m.of('tasks.status')[4]).toMatchObject({ seq: 5, updates: [], flush: true });
    ch.send({ t: 'tasks.ack', b: { seq: 4, more: [5] } });
    expect(await flushed).toBe(true);
    // While flushed() waits, a report leaves marked flush (no empty frame then).
    s.report('t5', st);
    expect(await s.flushed(2000)).toBe(true);
    expect(m.of('tasks.status').slice(5)).toEqual([expect.objectContaining({ seq: 6, flush: true })]);
    await s.stop();
  });

  test('the back-off grows and is capped; stop() ends a pending connect at once', async () => {
    const clock = new ManualClock(0);
    let attempts = 0;
    let hang: ((c: Conn) => void) | null = null;
    const s = client(async () => {
      attempts++;
      if (attempts < 6) throw new Error('connection refused');
      return new Promise<Conn>((resolve) => { hang = resolve; });
    }, clock);
    s.start();
    const waits: number[] = [];
    while (attempts < 6) {
      const before = attempts;
      let waited = 0;
      while (attempts === before) {
        await new Promise((r) => setImmediate(r));
        if (attempts !== before) break;
        clock.advance(10);
        waited += 10;
      }
      waits.push(waited);
    }
    // Half the base plus jitter (0.5 here): 100 → 75, 200 → 150, 400 → 300, 800 → 600, 1000 → 750.
    expect(waits).toEqual([80, 150, 300, 600, 750]); // in steps of 10 ms
    expect(hang).not.toBeNull();
    await s.stop(); // bounded: the hanging connect is abandoned
    const [late] = memoryConnPair();
    hang!(late);
    await waitFor(() => late.closed, 'a connection arriving after stop is closed');
  });

  test('many or long status reports are cut and split to fit the frame bounds', async () => {
    const m = new ScriptedManager();
    const clock = new ManualClock(0);
    const s = client(m.connect, clock);
    s.start();
    await s.registered(1000);
    const long = 'x'.repeat(100_000);
    for (let i = 0; i < 2500; i++) s.report(`t${i}`, { State: 'failed', Message: long, Err: long, Timestamp: '' });
    expect(await s.flushed(1000)).toBe(true);
    const frames = m.of('tasks.status');
    expect(frames.length).toBeGreaterThan(2);
    const updates = frames.flatMap((f) => f.updates);
    expect(updates).toHaveLength(2500);
    expect(updates[0]!.status.Message.length).toBeLessThanOrEqual(4096);
    await s.stop();
  });

  test('connect learns how the last attempt ended: nothing, a refusal and the leader it named, a session that broke', async () => {
    const clock = new ManualClock(0);
    const hints: unknown[] = [];
    const channels: FrameChannel<SessionMessages>[] = [];
    const connect = async (_signal: AbortSignal, hint?: SessionHint): Promise<Conn> => {
      hints.push(hint);
      const [worker, manager] = memoryConnPair();
      const ch = new FrameChannel(manager, SESSION_FRAMES);
      channels.push(ch);
      const n = channels.length;
      ch.onMessage((m) => {
        if (m.t !== 'session.register') return;
        if (n === 1) ch.send({ t: 'session.error', b: { code: 'shutting-down', message: 'not the leader', leader: '10.0.0.9:2377' } });
        else if (n === 2) ch.send({ t: 'session.error', b: { code: 'shutting-down', message: 'no leader known' } });
        else ch.send({ t: 'session.registered', b: { sessionId: `s${n}`, nodeId: m.b.nodeId, heartbeatPeriodMs: 1000, managers: [] } });
      });
      return worker;
    };
    const s = client(connect, clock);
    s.start();
    for (let i = 0; i < 50 && channels.length < 3; i++) { clock.advance(100); await new Promise((r) => setImmediate(r)); }
    expect(await s.registered(1000)).toBe(true);
    channels[2]!.close('the manager died');
    for (let i = 0; i < 50 && hints.length < 4; i++) { clock.advance(100); await new Promise((r) => setImmediate(r)); }
    expect(hints.slice(0, 4)).toEqual([{}, { refused: { leader: '10.0.0.9:2377' } }, { refused: {} }, { broke: true }]);
    await s.stop();
  });
});

describe('SessionClient: revocations', () => {
  test('asked for only with a handler; each list goes to it whole; one before registration ends the session', async () => {
    const m = new ScriptedManager();
    const clock = new ManualClock(0);
    const lists: string[][] = [];
    const s = client(m.connect, clock, { revocations: (revoked) => lists.push(revoked.map((r) => r.serial)) });
    s.start();
    expect(await s.registered(1000)).toBe(true);
    expect(m.of('session.register')[0]!.accepts).toContain('revocations');
    m.channels[0]!.send({ t: 'revocations', b: { revoked: [{ serial: 'aa', name: 'alice', at: '2026-01-01T00:00:00Z' }] } });
    m.channels[0]!.send({ t: 'revocations', b: { revoked: [] } });
    await waitFor(() => lists.length === 2, 'both lists');
    expect(lists).toEqual([['aa'], []]);
    await s.stop();

    const plain = new ScriptedManager();
    const p = client(plain.connect, new ManualClock(0));
    p.start();
    expect(await p.registered(1000)).toBe(true);
    expect(plain.of('session.register')[0]!.accepts).not.toContain('revocations');
    await p.stop();

    // A manager end that sends the list before `session.registered`: the worker closes the session.
    const [worker, manager] = memoryConnPair();
    const early = new FrameChannel(manager, SESSION_FRAMES);
    let closed = '';
    early.onMessage((msg) => {
      if (msg.t === 'session.register') early.send({ t: 'revocations', b: { revoked: [] } });
    });
    early.onClose((r) => { closed = r; });
    const e = client(async () => worker, new ManualClock(0), { revocations: () => {}, closed: (r) => { closed ||= r; } });
    e.start();
    await waitFor(() => closed !== '', 'the early session closed');
    await e.stop();
  });
});
