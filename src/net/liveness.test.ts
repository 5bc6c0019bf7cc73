import { afterEach, describe, expect, test } from 'bun:test';
import type { Connection } from '@libp2p/interface';
import { type TestNode, testCluster, testNode, waitFor } from './testkit.ts';

const started: TestNode[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((n) => n.stop()));
});

const FAST = { intervalMs: 100, timeoutMs: 300, tickMs: 20 };

type Muxer = { ping(o?: unknown): Promise<number>; handlePing(h: { flag: number }): void };
const muxerOf = (c: Connection) => (c as unknown as { muxer: Muxer }).muxer;

async function pair(): Promise<[TestNode, TestNode, Connection]> {
  const cluster = await testCluster();
  const a = await testNode(cluster, 'a', 'manager', { liveness: FAST });
  const b = await testNode(cluster, 'b', 'worker', { liveness: FAST });
  started.push(a, b);
  const conn = await b.node.dial(a.addr);
  await waitFor(() => a.node.getConnections(b.node.peerId).length === 1, 'a sees the connection');
  return [a, b, conn];
}

describe('LivenessMonitor: a yamux ping per connection', () => {
  test('a connection whose peer answers stays open, pinged on every interval', async () => {
    const [a, b, conn] = await pair();
    let pings = 0;
    const muxer = muxerOf(conn);
    const ping = muxer.ping.bind(muxer);
    muxer.ping = (o) => { pings++; return ping(o); };
    await waitFor(() => pings >= 5, 'five pings from b', 10_000);
    expect(conn.status).toBe('open');
    expect(b.node.services.liveness.aborted).toBe(0);
    expect(a.node.services.liveness.aborted).toBe(0);
    // libp2p's own monitor is off: no stream was ever opened for a ping.
    expect(conn.streams.filter((s) => s.protocol?.includes('ping'))).toHaveLength(0);
  });

  test('a connection whose peer stops answering is aborted', async () => {
    const [a, b, conn] = await pair();
    // a's end of the connection goes deaf to ping requests, as a hung or vanished host would.
    const aSide = a.node.getConnections(b.node.peerId)[0]!;
    const aMuxer = muxerOf(aSide);
    const handle = aMuxer.handlePing.bind(aMuxer);
    aMuxer.handlePing = (h) => { if (h.flag !== 1 /* SYN: a request */) handle(h); };
    await waitFor(() => conn.status !== 'open', 'b aborts the connection', 10_000);
    expect(b.node.services.liveness.aborted).toBeGreaterThanOrEqual(1);
    await waitFor(() => b.node.getConnections(a.node.peerId).length === 0, 'b has no connection to a');
  });
});
