/**
 * The ingress mesh's TCP data path in native code: `native/relay.c`, compiled when first needed by
 * the TinyCC inside Bun (`bun:ffi` `cc`), runs a few threads (one per CPU, at most 8), each with its
 * own epoll and its own share of the relayed connections, that move their bytes. This side keeps every decision, as `TcpRelayPort` (the all-JavaScript relay it
 * stands in for) does: the backend of each connection, the retry after a refusal or timeout, the
 * connection bound, local-only clients, load and failure bookkeeping. Only accept, connect and the
 * byte shuttling happen in the threads; what they see comes back as events (accepted, connected, failed,
 * closed) that this side drains when a byte on a notify socket says some are queued.
 *
 * Why: per relayed request the kernel's socket work is the same for any proxy (~20 µs here); what
 * differs is user space, ~3.7 µs per request through Bun's socket callbacks against ~1.4 µs for nginx
 * and ~0.6 µs for this loop (bench/mesh.ts, docs/mesh.md). Nothing in npm does this job.
 *
 * Where it cannot be built (no TinyCC for the platform, a sandbox without mmap-exec) `nativeRelay()`
 * says why and the ingress proxy falls back to `TcpRelayPort`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cc, ptr } from 'bun:ffi';
import type { Socket } from 'bun';
import relaySource from './native/relay.c' with { type: 'text' };
import { type BackendLoad, type BackendTable, type TableEntry } from './backends.ts';
import { PortUnavailableError } from './errors.ts';
import { type ConnectionBudget, newPortCounters, type PortCounters, type TcpRelayOptions } from './tcp-relay.ts';

const E_ACCEPTED = 1;
const E_CONNECTED = 2;
const E_FAILED = 3;
const E_CLOSED = 4;
const EVENT_SIZE = 80;
const DRAIN_BATCH = 512;

const ERRNO: Record<number, string> = {
  1: 'operation not permitted',
  13: 'permission denied',
  22: 'invalid argument',
  24: 'too many open files',
  98: 'address already in use',
  99: 'address not available',
  101: 'network unreachable',
  110: 'timed out',
  111: 'connection refused',
  113: 'no route to host',
};
const errnoText = (e: number) => ERRNO[e] ?? `errno ${e}`;

function compile() {
  // cc reads a file: the source is bundled as text, written out for the compiler and removed again.
  const dir = mkdtempSync(join(tmpdir(), 'shoal-relay-'));
  try {
    const file = join(dir, 'relay.c');
    writeFileSync(file, relaySource);
    return cc({
      source: file,
      symbols: {
        relay_start: { args: ['int', 'int'], returns: 'int' },
        relay_threads: { args: [], returns: 'int' },
        relay_pinned: { args: [], returns: 'int' },
        relay_listen: { args: ['cstring', 'int'], returns: 'int' },
        relay_listener_port: { args: ['int'], returns: 'int' },
        relay_unlisten: { args: ['int'], returns: 'int' },
        // Slots and generations are below 2^30: passed as int32. (Bun 1.4.5's FFI passed a wrong 'u32'
        // about once in 70 000 calls here once the caller was JIT-compiled; int32 values do not hit it.)
        relay_connect: { args: ['int', 'int', 'cstring', 'int', 'int', 'int'], returns: 'int' },
        relay_close: { args: ['int', 'int', 'int'], returns: 'int' },
        relay_drain: { args: ['ptr', 'int'], returns: 'int' },
        relay_event_size: { args: [], returns: 'int' },
        relay_connections: { args: ['int'], returns: 'int' },
        relay_set_js_grace: { args: ['int'], returns: 'int' },
      },
    }).symbols;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

type Symbols = ReturnType<typeof compile>;

/** What one listener is told about its connections. */
interface ListenerHandler {
  accepted(slot: number, gen: number, remoteAddr: string): void;
  connected(slot: number, gen: number, attempt: number): void;
  failed(slot: number, gen: number, attempt: number, errno: number): void;
  /** With the bytes read from the client and from the upstream over the connection's life. */
  closed(slot: number, gen: number, bytesIn: number, bytesOut: number): void;
}

const cstr = (s: string) => Buffer.from(`${s}\0`);

/**
 * A connection's key on this side: its slot (< 2^23: a shard's own slot, below 2^20, times at most 8
 * shards) and that slot's generation (< 2^30), so the key stays an exact integer.
 */
const connKey = (slot: number, gen: number) => slot * 0x40000000 + gen;

/**
 * The relay threads to run: SHOAL_MESH_THREADS (1 to 8) or one per CPU, at most 8. One thread moves
 * ~40 000 small requests a second here; more let a busy host's ingress use its other cores.
 */
export function relayThreads(env: Record<string, string | undefined> = process.env, cpus = navigator.hardwareConcurrency): number {
  const asked = env.SHOAL_MESH_THREADS;
  if (asked !== undefined && asked !== '') {
    const n = Number(asked);
    if (!Number.isInteger(n) || n < 1 || n > 8) throw new Error(`SHOAL_MESH_THREADS must be a whole number from 1 to 8, not "${asked}"`);
    return n;
  }
  return Math.max(1, Math.min(8, cpus || 1));
}

/**
 * Whether each relay thread is pinned to a CPU of its own: SHOAL_MESH_PIN=0 turns it off (default on;
 * it takes effect only where the process may run on at least as many CPUs as there are threads).
 * Measured in docs/mesh.md.
 */
export function relayPinning(env: Record<string, string | undefined> = process.env): boolean {
  const asked = env.SHOAL_MESH_PIN;
  if (asked === undefined || asked === '' || asked === '1') return true;
  if (asked === '0') return false;
  throw new Error(`SHOAL_MESH_PIN must be 0 or 1, not "${asked}"`);
}

/** The relay threads of this process, and the calls into them. */
export class NativeRelay {
  /** Every event names the listener of its connection; unlisten delivers the last ones before forgetting it. */
  private readonly byListener = new Map<number, ListenerHandler>();
  private readonly events = new Uint8Array(EVENT_SIZE * DRAIN_BATCH);
  private readonly view = new DataView(this.events.buffer);
  private readonly decoder = new TextDecoder();
  private notify: Socket<undefined> | null = null;

  private constructor(private readonly sym: Symbols) {}

  static async start(threads = relayThreads(), pin = relayPinning()): Promise<NativeRelay> {
    const sym = compile();
    if (sym.relay_event_size() !== EVENT_SIZE) throw new Error(`relay.c event size ${sym.relay_event_size()}, want ${EVENT_SIZE}`);
    const fd = sym.relay_start(threads | 0, pin ? 1 : 0);
    if (fd < 0) throw new Error(`the relay thread did not start: ${errnoText(-fd)}`);
    const relay = new NativeRelay(sym);
    // Bun.connect takes an open descriptor too (FdSocketOptions), though its typings have no overload for it.
    const options: Bun.FdSocketOptions<undefined> = { fd, socket: { data: () => relay.drain(), error: () => {} } };
    const notify = await Bun.connect(options as unknown as Bun.UnixSocketOptions<undefined>);
    // The watch on the notify socket must not keep a daemon (or a test) alive on its own.
    notify.unref();
    relay.notify = notify;
    return relay;
  }

  /** For tests: how long an accepted connection may wait for this side's answer before the thread closes it. */
  setGraceMs(ms: number): void {
    this.sym.relay_set_js_grace(ms | 0);
  }

  get connections(): number {
    return this.sym.relay_connections(-1);
  }

  /** The threads running (fewer than asked only if the system refused one). */
  get threads(): number {
    return this.sym.relay_threads();
  }

  /** How many of them are pinned to a CPU of their own. */
  get pinned(): number {
    return this.sym.relay_pinned();
  }

  /** Open connections of one thread's shard (a connection's shard is its slot modulo `threads`). */
  connectionsOf(shard: number): number {
    return this.sym.relay_connections(shard | 0);
  }

  listen(addr: string, port: number, handler: ListenerHandler): { id: number; port: number } {
    const id = this.sym.relay_listen(cstr(addr), port | 0);
    if (id < 0) throw new PortUnavailableError(`cannot listen on ${addr}:${port}/tcp: ${errnoText(-id)}`);
    this.byListener.set(id, handler);
    const bound = this.sym.relay_listener_port(id | 0);
    this.notify?.ref();
    return { id, port: bound };
  }

  unlisten(id: number): void {
    this.sym.relay_unlisten(id | 0);
    // The closed events of its connections are queued now; deliver them before forgetting the handler.
    this.drain();
    this.byListener.delete(id);
    if (this.byListener.size === 0) this.notify?.unref();
  }

  /** 0: connecting; < 0: failed at once (-errno); 1: the connection is already gone. */
  connect(slot: number, gen: number, addr: string, port: number, attempt: number, timeoutMs: number): number {
    return this.sym.relay_connect(slot | 0, gen | 0, cstr(addr), port | 0, attempt | 0, timeoutMs | 0);
  }

  close(slot: number, gen: number, abort: boolean): void {
    this.sym.relay_close(slot | 0, gen | 0, abort ? 1 : 0);
  }

  private drain(): void {
    const v = this.view;
    for (;;) {
      const n = this.sym.relay_drain(ptr(this.events), DRAIN_BATCH);
      for (let i = 0; i < n; i++) {
        const o = i * EVENT_SIZE;
        const type = v.getUint32(o, true);
        const slot = v.getInt32(o + 4, true);
        const gen = v.getInt32(o + 8, true);
        const value = v.getInt32(o + 12, true);
        const h = this.byListener.get(v.getUint32(o + 16, true));
        if (type === E_ACCEPTED) {
          if (!h) {
            this.close(slot, gen, true);
            continue;
          }
          const end = this.events.indexOf(0, o + 24);
          const addr = this.decoder.decode(this.events.subarray(o + 24, end < 0 || end > o + 80 ? o + 80 : end));
          h.accepted(slot, gen, addr);
        } else if (type === E_CONNECTED) h?.connected(slot, gen, value);
        else if (type === E_FAILED) h?.failed(slot, gen, value, v.getUint32(o + 20, true));
        // Two little-endian i64 where an accept's address goes; halves, so no BigInt per close.
        else if (type === E_CLOSED) h?.closed(slot, gen, v.getUint32(o + 24, true) + v.getUint32(o + 28, true) * 2 ** 32, v.getUint32(o + 32, true) + v.getUint32(o + 36, true) * 2 ** 32);
      }
      if (n < DRAIN_BATCH) return;
    }
  }
}

let shared: Promise<NativeRelay> | null = null;
let unavailable: string | null = null;

/**
 * Starts (once) and returns the native relay, or the reason it cannot run here. `SHOAL_MESH_RELAY=js`
 * turns it off.
 */
export async function nativeRelay(): Promise<NativeRelay | string> {
  if (process.env.SHOAL_MESH_RELAY === 'js') return 'turned off by SHOAL_MESH_RELAY=js';
  if (unavailable !== null) return unavailable;
  shared ??= NativeRelay.start();
  try {
    return await shared;
  } catch (e) {
    unavailable = e instanceof Error ? e.message.split('\n')[0]! : String(e);
    return unavailable;
  }
}

/** One connection as this side knows it. */
class Conn {
  backend: TableEntry | null = null;
  attempt = 0;
  tried: Set<string> | null = null;
  connected = false;
  constructor(
    readonly slot: number,
    readonly gen: number,
    readonly localOnly: boolean,
  ) {}
}

/** One published TCP port whose bytes go through the native relay; the same contract as `TcpRelayPort`. */
export class NativeTcpRelayPort implements ListenerHandler {
  private id = -1;
  private bound = 0;
  private readonly conns = new Map<number, Conn>();

  constructor(
    private readonly relay: NativeRelay,
    private readonly table: BackendTable,
    private readonly load: BackendLoad,
    private readonly budget: ConnectionBudget,
    private readonly opts: TcpRelayOptions,
    public counters: PortCounters = newPortCounters(),
  ) {}

  get port(): number {
    return this.bound;
  }

  listen(port: number): number {
    const { id, port: bound } = this.relay.listen(this.opts.bindAddress, port, this);
    this.id = id;
    this.bound = bound;
    return bound;
  }

  close(): void {
    if (this.id < 0) return;
    this.relay.unlisten(this.id);
    this.id = -1;
  }

  accepted(slot: number, gen: number, remoteAddr: string): void {
    if (this.budget.active >= this.budget.max) {
      this.budget.refused++;
      this.relay.close(slot, gen, true);
      return;
    }
    this.budget.active++;
    this.counters.connections++;
    const c = new Conn(slot, gen, this.opts.localOnlyFrom(remoteAddr));
    this.conns.set(connKey(slot, gen), c);
    this.connect(c);
  }

  connected(slot: number, gen: number, attempt: number): void {
    const c = this.conns.get(connKey(slot, gen));
    if (!c || attempt !== c.attempt || c.backend === null) return;
    c.connected = true;
    this.load.acquire(c.backend.key);
    this.load.markAlive(c.backend.key);
  }

  failed(slot: number, gen: number, attempt: number): void {
    const c = this.conns.get(connKey(slot, gen));
    if (!c || attempt !== c.attempt) return;
    this.attemptFailed(c);
  }

  closed(slot: number, gen: number, bytesIn: number, bytesOut: number): void {
    const key = connKey(slot, gen);
    const c = this.conns.get(key);
    if (!c) return;
    this.counters.bytesIn += bytesIn;
    this.counters.bytesOut += bytesOut;
    this.conns.delete(key);
    this.budget.active--;
    if (c.connected && c.backend !== null) this.load.release(c.backend.key);
  }

  private connect(c: Conn): void {
    for (;;) {
      const b = this.table.pick(c.tried ?? undefined, c.localOnly);
      if (b === null || c.attempt >= this.opts.maxConnectAttempts) return this.relay.close(c.slot, c.gen, false);
      c.backend = b;
      const r = this.relay.connect(c.slot, c.gen, b.addr, b.port, ++c.attempt, this.opts.connectTimeoutMs);
      if (r >= 0) return; // connecting (0), or gone (1: its closed event is on its way)
      // Failed at once (an address of a family this host has no route for): the next backend.
      this.load.markFailed(b.key);
      (c.tried ??= new Set()).add(b.key);
    }
  }

  private attemptFailed(c: Conn): void {
    const key = c.backend!.key;
    this.load.markFailed(key);
    (c.tried ??= new Set()).add(key);
    this.connect(c);
  }
}
