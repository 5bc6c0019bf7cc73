/**
 * The libp2p patches applied by scripts/patch-deps.mjs (docs/net.md): the server accepts a
 * connection under Bun (bun-alpn, every test here), a node makes one TLS certificate for all its
 * connections, a peer certificate remembered from an earlier connection still has to belong to the
 * peer dialled (reuse-cert), a muxer frame leaves as one TLS record (one-record), and the list of
 * every connection is still every connection (flat-connections).
 */
import { afterAll, beforeAll, describe, expect, mock, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { multiaddr } from '@multiformats/multiaddr';

const tlsDir = dirname(fileURLToPath(import.meta.resolve('@libp2p/tls')));
const utilsPath = join(tlsDir, 'utils.js');
const utils = await import(utilsPath);
const made: string[] = [];
const generate = utils.generateCertificate;
mock.module(utilsPath, () => ({
  ...utils,
  generateCertificate: (key: { publicKey: { toString(): string } }, options?: unknown) => {
    made.push(key.publicKey.toString());
    return generate(key, options);
  },
}));
const { testCluster, testNode, waitFor } = await import('./testkit.ts');
const { PROTOCOLS } = await import('./protocols.ts');
type Node = Awaited<ReturnType<typeof testNode>>;

describe('libp2p as patched', () => {
  let a: Node, b: Node, c: Node;
  beforeAll(async () => {
    const cluster = await testCluster();
    [a, b, c] = await Promise.all([testNode(cluster, 'a', 'manager'), testNode(cluster, 'b', 'worker'), testNode(cluster, 'c', 'worker')]);
  });
  afterAll(async () => { await Promise.all([a?.stop(), b?.stop(), c?.stop()]); });

  test('the installed files carry the four patches', () => {
    const libp2pDir = dirname(fileURLToPath(import.meta.resolve('libp2p')));
    expect(readFileSync(join(libp2pDir, 'connection-manager', 'index.js'), 'utf8').includes('// shoal-patch: flat-connections')).toBe(true);
    const text = readFileSync(join(tlsDir, 'tls.js'), 'utf8');
    expect(text.includes('// shoal-patch: bun-alpn')).toBe(true);
    expect(text.includes('// shoal-patch: reuse-cert')).toBe(true);
    expect(readFileSync(join(tlsDir, 'utils.js'), 'utf8').includes('// shoal-patch: one-record')).toBe(true);
  });

  test('a muxer frame leaves as one TLS record: no separate record for its 12-byte header', async () => {
    let got = 0;
    await a.guard.handle(PROTOCOLS.dispatcher, ({ stream }) => {
      stream.addEventListener('message', (evt) => { got += (evt as unknown as { data: { byteLength: number } }).data.byteLength; });
    });
    const { stream } = await b.guard.open(a.addr, PROTOCOLS.dispatcher);
    // Count the writes to plain TCP sockets (the TLS records leaving), by size, while b sends.
    const sizes: number[] = [];
    const write = net.Socket.prototype.write;
    net.Socket.prototype.write = function (this: net.Socket, chunk: { byteLength?: number }, ...rest: unknown[]) {
      if (!(this instanceof tls.TLSSocket)) sizes.push(chunk?.byteLength ?? 0);
      return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof write;
    const N = 100;
    try {
      for (let i = 1; i <= N; i++) {
        stream.send(new Uint8Array(400).fill(i));
        await waitFor(() => got === i * 400, `frame ${i} received`);
      }
    } finally {
      net.Socket.prototype.write = write;
    }
    // Unpatched, each frame is two records: the header's (12 + 22 bytes) and the body's.
    const small = sizes.filter((n) => n < 100).length;
    const large = sizes.filter((n) => n >= 400).length;
    expect(large).toBeGreaterThanOrEqual(N);
    expect(small).toBeLessThan(N / 4);
  });

  test('a node makes one certificate for all its connections', async () => {
    for (let round = 0; round < 3; round++) {
      const conn = await b.node.dial(a.addr);
      expect(conn.remotePeer.toString()).toBe(a.node.peerId.toString());
      await b.node.hangUp(a.node.peerId);
    }
    const byB = made.filter((k) => k === b.node.peerId.publicKey!.toString()).length;
    const byA = made.filter((k) => k === a.node.peerId.publicKey!.toString()).length;
    expect(byB).toBe(1);
    expect(byA).toBe(1);
  });

  test('a certificate verified before does not pass for another peer id', async () => {
    await b.node.dial(a.addr); // a's certificate is now remembered by b
    await b.node.hangUp(a.node.peerId);
    // a's address, but c's peer id: the handshake must refuse a's (remembered) certificate.
    const wrong = multiaddr(`${a.addr.toString().replace(/\/p2p\/.*$/, '')}/p2p/${c.node.peerId.toString()}`);
    await expect(b.node.dial(wrong)).rejects.toThrow();
    expect(b.node.getConnections(a.node.peerId).length).toBe(0);
    // and the right one still connects
    const conn = await b.node.dial(a.addr);
    expect(conn.remotePeer.toString()).toBe(a.node.peerId.toString());
  });

  test('getConnections() lists every connection to every peer, once', async () => {
    await Promise.all([b.node.dial(a.addr), c.node.dial(a.addr)]);
    await waitFor(() => a.node.getConnections().length >= 2, 'two inbound connections');
    const all = a.node.getConnections();
    const byPeer = [b, c].flatMap((n) => a.node.getConnections(n.node.peerId));
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBe(byPeer.length);
    for (const conn of byPeer) expect(all).toContain(conn);
  });
});
