import { afterEach, expect, test } from 'bun:test';
import { YamuxStream } from '@libp2p/yamux/stream';
import { PROTOCOLS } from './protocols.ts';
import { type TestNode, testCluster, testNode, waitFor } from './testkit.ts';
import { growReceiveWindow, windowUpdatesAtHalf } from './yamux-window.ts';

const started: TestNode[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((n) => n.stop()));
});

/**
 * A manager receiving on the dispatcher protocol and a worker's stream to it. `got.bytes` counts
 * what the manager read; once it has read `echoAt` bytes it sends one byte back, which reaches the
 * worker after every window update the manager sent before it (one connection, in order).
 */
async function pair(echoAt = -1, window = 0) {
  const cluster = await testCluster();
  const m1 = await testNode(cluster, 'm1', 'manager');
  const w1 = await testNode(cluster, 'w1', 'worker');
  started.push(m1, w1);
  const got = { bytes: 0 };
  await m1.guard.handle(PROTOCOLS.dispatcher, ({ stream }) => {
    if (window) expect(growReceiveWindow(stream, window)).toBe(true);
    stream.addEventListener('message', (evt) => {
      got.bytes += evt.data.byteLength;
      if (got.bytes === echoAt) stream.send(Uint8Array.of(1));
    });
  });
  const { stream } = await w1.guard.open(m1.addr, PROTOCOLS.dispatcher);
  return { stream, got };
}

test('the library is as the change expects (else a yamux upgrade undid it)', () => {
  expect(windowUpdatesAtHalf()).toBe(true);
  expect(new Set(Object.getOwnPropertyNames(YamuxStream.prototype))).toContain('sendWindowUpdate');
});

test('small frames get no window update back until half the window is read', async () => {
  const { stream } = await pair(20_000);
  expect(stream).toBeInstanceOf(YamuxStream);
  let echoed = false;
  stream.addEventListener('message', () => { echoed = true; });
  const window = (stream as unknown as { sendWindowCapacity: number }).sendWindowCapacity;
  const frame = new Uint8Array(100);
  for (let i = 0; i < 200; i++) stream.send(frame);
  await waitFor(() => echoed, 'the 200 frames read and the echo back');
  // Each frame went out of the sender's window and none came back: the receiver sent no update.
  // (The library alone sends one per frame, and the window would be whole again.)
  const left = (stream as unknown as { sendWindowCapacity: number }).sendWindowCapacity;
  expect(left).toBeLessThanOrEqual(window - 20_000);
});

test('a transfer many times the window still flows: updates come once half is used', async () => {
  const { stream, got } = await pair();
  const chunk = new Uint8Array(16 * 1024);
  const total = 64 * chunk.byteLength; // 1 MiB, four times yamux's 256 KiB initial window
  for (let i = 0; i < 64; i++) {
    if (!stream.send(chunk)) await new Promise((r) => stream.addEventListener('drain', r, { once: true }));
  }
  await waitFor(() => got.bytes === total, '1 MiB read', 30_000);
  expect(got.bytes).toBe(total);
});

test('a receiver that grows its window gives the sender that much credit: a 3 MiB send leaves whole', async () => {
  const window = 4 * 1024 * 1024;
  const { stream, got } = await pair(-1, window);
  const credit = () => (stream as unknown as { sendWindowCapacity: number }).sendWindowCapacity;
  stream.send(Uint8Array.of(0)); // the handler runs (and offers its window) once the stream carries data
  await waitFor(() => credit() > 256 * 1024, 'the window update');
  expect(credit()).toBe(window - 1);
  // Credit for all of it: none of it waits for an update from the receiver.
  const big = new Uint8Array(3 * 1024 * 1024);
  stream.send(big);
  expect(credit()).toBe(window - 1 - big.byteLength);
  await waitFor(() => got.bytes === big.byteLength + 1, '3 MiB read', 30_000);
});

test('growReceiveWindow leaves alone what is not a yamux stream', () => {
  expect(growReceiveWindow({}, 1 << 22)).toBe(false);
});
