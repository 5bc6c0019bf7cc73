import { afterEach, describe, expect, test } from 'bun:test';
import { type FrameSchema, is } from '../lib/frames.ts';
import { FrameChannel } from '../manager/dispatcher/conn.ts';
import { PROTOCOLS } from './protocols.ts';
import { StreamConn } from './stream-conn.ts';
import { type TestNode, testCluster, testNode, waitFor } from './testkit.ts';

interface M {
  small: { n: number };
}
const SMALL: FrameSchema<M> = { small: { version: 1, maxBytes: 64, check: is.shape({ n: is.number() }) } };
const LOOSE: FrameSchema<M> = { small: { version: 1, maxBytes: 4096, check: is.any() } };

const started: TestNode[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((n) => n.stop()));
});

describe('StreamConn: frames over a libp2p stream', () => {
  test('many small frames keep their order; a frame over its bound closes the stream', async () => {
    const cluster = await testCluster();
    const m1 = await testNode(cluster, 'm1', 'manager');
    const w1 = await testNode(cluster, 'w1', 'worker');
    started.push(m1, w1);
    const got: number[] = [];
    let serverClosed: string | null = null;
    await m1.guard.handle(PROTOCOLS.dispatcher, ({ stream, connection }) => {
      const ch = new FrameChannel(new StreamConn(stream, connection), SMALL);
      ch.onMessage((m) => got.push(m.b.n));
      ch.onClose((r) => { serverClosed = r; });
    });
    const { stream, connection } = await w1.guard.open(m1.addr, PROTOCOLS.dispatcher);
    const conn = new StreamConn(stream, connection);
    expect(conn.remoteAddr).toBe('127.0.0.1'); // the IP, as Docker's Node.Status.Addr
    // The sender's schema is looser than the receiver's, as with a buggy or hostile peer.
    const ch = new FrameChannel(conn, LOOSE);
    let clientClosed = false;
    ch.onClose(() => { clientClosed = true; });
    for (let n = 0; n < 1000; n++) ch.send({ t: 'small', b: { n } });
    await waitFor(() => got.length === 1000, '1000 frames');
    expect(got).toEqual([...Array(1000).keys()]);

    ch.send({ t: 'small', b: { n: 1, pad: 'x'.repeat(200) } as { n: number } });
    await waitFor(() => serverClosed !== null && clientClosed, 'both ends closed');
    expect(serverClosed!).toMatch(/over its bound of 64/);
    expect(ch.send({ t: 'small', b: { n: 2 } })).toBe(false);
  });
});
