import { describe, expect, test } from 'bun:test';
import { FrameError } from '../../lib/frames.ts';
import { ConnClosedError, FrameChannel, memoryConnPair } from './conn.ts';
import { SESSION_FRAMES, type SessionMessages } from './protocol.ts';
import { makeTask, waitFor } from './testkit.ts';

function channels(chunkBytes?: number) {
  const [a, b] = memoryConnPair({ chunkBytes });
  const ca = new FrameChannel<SessionMessages>(a, SESSION_FRAMES);
  const cb = new FrameChannel<SessionMessages>(b, SESSION_FRAMES);
  const got: unknown[] = [];
  cb.onMessage((m) => got.push(m));
  return { a, b, ca, cb, got };
}

describe('memory Conn and FrameChannel', () => {
  test('messages cross as bytes: the receiver gets an equal copy, in order, whatever the chunking', async () => {
    for (const chunk of [1, 3, 1000, undefined]) {
      const { ca, got } = channels(chunk);
      const task = makeTask('n1');
      ca.send({ t: 'assignments', b: { full: true, last: true, tasks: [task], removed: [] } });
      ca.send({ t: 'heartbeat.ack', b: { heartbeatPeriodMs: 5 } });
      await waitFor(() => got.length === 2, 'two messages');
      const first = got[0] as { b: { tasks: unknown[] } };
      expect(first.b.tasks[0]).toEqual(task);
      expect(first.b.tasks[0]).not.toBe(task);
      expect(got[1]).toEqual({ t: 'heartbeat.ack', b: { heartbeatPeriodMs: 5 } });
    }
  });

  test('data written before a close is delivered before the close is reported', async () => {
    const { a, ca, cb, got } = channels(2);
    let closedWith = '';
    cb.onClose((r) => { closedWith = r; expect(got).toHaveLength(1); });
    ca.send({ t: 'session.error', b: { code: 'unknown-node', message: 'who are you' } });
    ca.close('bye');
    await waitFor(() => closedWith !== '', 'close');
    expect(closedWith).toContain('bye');
    expect(() => a.write(new Uint8Array([1]))).toThrow(ConnClosedError);
    expect(ca.send({ t: 'heartbeat', b: { sessionId: 'x' } })).toBe(false);
  });

  test('a frame over its bound is refused at the sender', () => {
    const { ca } = channels();
    expect(() => ca.send({ t: 'heartbeat', b: { sessionId: 'x'.repeat(2000) } })).toThrow(FrameError);
  });

  test('a bad frame or a throwing handler closes the connection with the reason', async () => {
    const { a, b, ca } = channels();
    let reason = '';
    b.onClose((r) => { reason = r; });
    a.write(new Uint8Array([0, 0, 0, 1, 0x81])); // a map of one entry, cut short
    await waitFor(() => reason !== '', 'close');
    expect(reason).toMatch(/undecodable/);

    const p = channels();
    p.cb.onMessage(() => { throw new Error('boom'); });
    let r2 = '';
    p.cb.onClose((r) => { r2 = r; });
    p.ca.send({ t: 'tasks.ack', b: { seq: 1 } });
    await waitFor(() => r2 !== '', 'close');
    expect(r2).toBe('handling "tasks.ack" failed: boom');
    void ca;
  });

  test('a reader that does not keep up is cut off instead of queueing without bound', async () => {
    const [a, b] = memoryConnPair({ maxQueuedBytes: 1024 });
    let reason = '';
    b.onClose((r) => { reason = r; });
    a.write(new Uint8Array(800));
    a.write(new Uint8Array(800)); // nobody reads b yet: over the bound
    await waitFor(() => reason !== '', 'close');
    expect(reason).toBe('receive queue full');
  });
});
