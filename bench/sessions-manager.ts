/**
 * The manager side of `bench/sessions.ts`, in its own process so that its CPU and memory are
 * measured alone: a store with a cluster and N worker nodes, the manager's stages (dispatcher
 * included) over it, and a TCP listener on 127.0.0.1 whose connections are dispatcher sessions
 * (the session protocol's frames on a plain socket: libp2p's TLS and yamux are not in this figure).
 * Prints `port <n>` once it listens.
 */
import type { Socket } from 'bun';
import { initCluster } from '../src/daemon/cluster.ts';
import { Manager } from '../src/daemon/manager-stages.ts';
import { ConnClosedError, type Conn } from '../src/manager/dispatcher/index.ts';
import { description, makeNode } from '../src/manager/dispatcher/testkit.ts';
import { memoryStore } from '../src/store/index.ts';

/** A Bun TCP socket as a dispatcher Conn. */
export class SocketConn implements Conn {
  #onData: ((b: Uint8Array) => void) | null = null;
  #onClose: ((r: string) => void)[] = [];
  #closed = false;
  #pending: Uint8Array[] = [];
  constructor(readonly socket: Socket<unknown>) {}
  get closed(): boolean { return this.#closed; }
  write(bytes: Uint8Array): void {
    if (this.#closed) throw new ConnClosedError('connection closed');
    if (this.#pending.length) { this.#pending.push(bytes.slice()); return; }
    const n = this.socket.write(bytes);
    if (n < bytes.length) this.#pending.push(bytes.slice(Math.max(0, n)));
  }
  drain(): void {
    while (this.#pending.length) {
      const b = this.#pending[0]!;
      const n = this.socket.write(b);
      if (n < b.length) { this.#pending[0] = b.slice(Math.max(0, n)); return; }
      this.#pending.shift();
    }
  }
  onData(fn: (b: Uint8Array) => void): void { this.#onData = fn; }
  data(b: Uint8Array): void { this.#onData?.(b); }
  close(reason = 'closed'): void {
    if (this.#closed) return;
    this.#closed = true;
    this.socket.end();
    for (const f of this.#onClose) f(reason);
  }
  onClose(fn: (r: string) => void): void { this.#onClose.push(fn); }
}

if (import.meta.main) {
  const n = Number(process.argv[2] ?? 500);
  const store = memoryStore();
  await initCluster(store, 'manager-0', description('manager-0'));
  await store.update((tx) => {
    for (let i = 0; i < n; i++) tx.create('nodes', makeNode(`bench-node-${i}`));
  });
  // Sessions registering and closing are expected; anything else a stage says goes to stderr.
  const manager = new Manager(store, (m) => { if (!/session of node \S+ closed|node \S+ registered/.test(m)) console.error(m); });
  await manager.start();
  const server = Bun.listen<{ conn: SocketConn }>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open(s) {
        s.data = { conn: new SocketConn(s as Socket<unknown>) };
        manager.dispatcher.accept(s.data.conn);
      },
      data(s, d) { s.data.conn.data(new Uint8Array(d)); },
      drain(s) { s.data.conn.drain(); },
      close(s) { s.data.conn.close('peer closed'); },
    },
  });
  console.log(`port ${server.port}`);
}
