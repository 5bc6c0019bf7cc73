/**
 * libp2p benchmark: two nodes in one process on loopback (client and server share the cores, so
 * figures are pessimistic). Figures: connection set-up (TCP + TLS 1.3 + yamux + the shoal certificate
 * exchange) for a fresh connection, first and median; round trip of one frame on an open stream.
 * Run alone: node_modules/.bin/bun bench/net.ts (it also runs as a compiled executable).
 */
import { type FrameSchema, is } from '../src/lib/frames.ts';
import { FrameChannel } from '../src/manager/dispatcher/conn.ts';
import { PROTOCOLS } from '../src/net/protocols.ts';
import { StreamConn } from '../src/net/stream-conn.ts';
import { testCluster, testNode } from '../src/net/testkit.ts';
import { type Figure, report, stats } from './lib.ts';

interface Ping { ping: { n: number } }
const PING: FrameSchema<Ping> = { ping: { version: 1, maxBytes: 64, check: is.shape({ n: is.number() }) } };

export async function run(connects = 30, roundTrips = 2000) {
  const cluster = await testCluster();
  const server = await testNode(cluster, 'm1', 'manager');
  const client = await testNode(cluster, 'w1', 'worker');
  try {
    await server.guard.handle(PROTOCOLS.dispatcher, ({ stream, connection }) => {
      const ch = new FrameChannel(new StreamConn(stream, connection), PING);
      ch.onMessage((m) => ch.send(m));
    });
    const setup: number[] = [];
    for (let i = 0; i < connects; i++) {
      const t0 = performance.now();
      const { stream } = await client.guard.open(server.addr, PROTOCOLS.dispatcher);
      setup.push(performance.now() - t0);
      stream.abort(new Error('done'));
      await client.node.hangUp(server.node.peerId);
    }
    const { stream, connection } = await client.guard.open(server.addr, PROTOCOLS.dispatcher);
    const ch = new FrameChannel(new StreamConn(stream, connection), PING);
    const rtt: number[] = [];
    let waiting: (() => void) | null = null;
    ch.onMessage(() => waiting?.());
    for (let n = 0; n < roundTrips; n++) {
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        waiting = resolve;
        ch.send({ t: 'ping', b: { n } });
      });
      rtt.push(performance.now() - t0);
    }
    const s = stats(setup);
    const r = stats(rtt);
    const figures: Figure[] = [
      report({ name: 'connection set-up incl. auth, first', value: setup[0]!, unit: 'ms', anchor: 'notes: TLS ~55 ms first' }),
      report({ name: 'connection set-up incl. auth, p50', value: s.p50, unit: 'ms', anchor: 'notes: TLS ~18 ms' }),
      report({ name: 'round trip, one open stream, p50', value: r.p50, unit: 'ms', anchor: 'notes: 0.11 ms' }),
    ];
    return { figures, params: { connects, roundTrips }, setupMs: s, roundTripMs: r };
  } finally {
    await client.stop();
    await server.stop();
  }
}

if (import.meta.main) {
  console.log(JSON.stringify(await run(), null, 2));
  process.exit(0);
}
