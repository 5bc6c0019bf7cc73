/**
 * The transport seam between a dispatcher and a worker: a byte stream (`Conn`) and the framed,
 * typed channel on top of it. A libp2p stream implements `Conn` later; `memoryConnPair()` is the
 * in-process one. Either way every message really is encoded into frames and decoded again.
 */
import { type FrameSchema, FrameDecoder, FrameError, encodeFrame, type Message, MAX_FRAME_BYTES } from '../../lib/frames.ts';
import { ShoalError } from '../../lib/errors.ts';

export class ConnClosedError extends ShoalError {
  override readonly status = 503;
}

/** A reliable, ordered, bidirectional byte stream. */
export interface Conn {
  /** Queue bytes for the peer. Throws ConnClosedError once closed. */
  write(bytes: Uint8Array): void;
  /** The one receiver of incoming bytes, in arbitrary chunks. */
  onData(fn: (bytes: Uint8Array) => void): void;
  /** Close both directions; idempotent. */
  close(reason?: string): void;
  /** Called once, when either end closes. */
  onClose(fn: (reason: string) => void): void;
  readonly closed: boolean;
  /** The peer's IP address as the transport knows it (libp2p: from its multiaddr), for `Node.Status.Addr`. */
  readonly remoteAddr?: string;
}

export interface MemoryConnOptions {
  /** Split every write into chunks of at most this many bytes (exercises partial frames). */
  chunkBytes?: number;
  /** Bytes queued towards one end before its writer is cut off (a slow reader). */
  maxQueuedBytes?: number;
}

/** Two connected in-process ends. Delivery is asynchronous (a microtask later), as on a socket. */
export function memoryConnPair(opts: MemoryConnOptions = {}): [Conn, Conn] {
  const a = new MemoryConn(opts);
  const b = new MemoryConn(opts);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

class MemoryConn implements Conn {
  peer!: MemoryConn;
  #closed = false;
  #onData: ((b: Uint8Array) => void) | null = null;
  #onClose: ((reason: string) => void)[] = [];
  #inbox: Uint8Array[] = [];
  #inboxBytes = 0;
  #scheduled = false;
  #closeReason: string | null = null;

  constructor(private readonly opts: MemoryConnOptions) {}

  get closed(): boolean { return this.#closed; }

  write(bytes: Uint8Array): void {
    if (this.#closed) throw new ConnClosedError('connection closed');
    const copy = bytes.slice();
    const step = this.opts.chunkBytes ?? copy.length;
    for (let off = 0; off < copy.length; off += step) this.peer.#receive(copy.subarray(off, off + step));
  }

  #receive(chunk: Uint8Array): void {
    if (this.#closed) return;
    this.#inbox.push(chunk);
    this.#inboxBytes += chunk.length;
    if (this.#inboxBytes > (this.opts.maxQueuedBytes ?? 64 * 1024 * 1024)) {
      this.close('receive queue full');
      return;
    }
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#drain();
    });
  }

  #drain(): void {
    while (this.#onData && this.#inbox.length > 0) {
      const c = this.#inbox.shift()!;
      this.#inboxBytes -= c.length;
      this.#onData(c);
    }
    if (this.#closeReason !== null && this.#inbox.length === 0) this.#fireClose();
  }

  onData(fn: (bytes: Uint8Array) => void): void {
    this.#onData = fn;
    this.#schedule();
  }

  onClose(fn: (reason: string) => void): void {
    this.#onClose.push(fn);
  }

  close(reason = 'closed'): void {
    if (this.#closeReason !== null) return;
    this.#closeReason = reason;
    this.#closed = true;
    this.#inbox = []; // a local close discards what was not read
    this.#inboxBytes = 0;
    this.#fireCloseSoon();
    this.peer.#peerClosed(reason);
  }

  /** The peer closed: deliver what is already queued, then report the close. */
  #peerClosed(reason: string): void {
    if (this.#closeReason !== null) return;
    this.#closeReason = `peer closed: ${reason}`;
    this.#closed = true;
    this.#schedule();
  }

  #fireCloseSoon(): void {
    queueMicrotask(() => this.#fireClose());
  }

  #fired = false;
  #fireClose(): void {
    if (this.#fired) return;
    this.#fired = true;
    for (const fn of this.#onClose.splice(0)) fn(this.#closeReason ?? 'closed');
  }
}

/**
 * A typed, framed channel over a Conn. A bad incoming frame closes the connection (the reason is the
 * FrameError's message); it never throws into the transport.
 */
export class FrameChannel<M> {
  readonly #decoder: FrameDecoder<M>;
  #onMessage: ((m: Message<M>) => void) | null = null;
  #closeReason: string | null = null;
  #onClose: ((reason: string) => void)[] = [];
  readonly maxFrameBytes: number;

  constructor(readonly conn: Conn, readonly schema: FrameSchema<M>, opts: { maxFrameBytes?: number } = {}) {
    this.maxFrameBytes = opts.maxFrameBytes ?? MAX_FRAME_BYTES;
    this.#decoder = new FrameDecoder(schema, { maxFrameBytes: this.maxFrameBytes });
    conn.onData((bytes) => this.#receive(bytes));
    conn.onClose((reason) => this.#closed(reason));
  }

  get closed(): boolean { return this.#closeReason !== null || this.conn.closed; }
  get closeReason(): string | null { return this.#closeReason; }

  onMessage(fn: (m: Message<M>) => void): void { this.#onMessage = fn; }

  onClose(fn: (reason: string) => void): void {
    if (this.#closeReason !== null) queueMicrotask(() => fn(this.#closeReason!));
    else this.#onClose.push(fn);
  }

  /** Send one message; false when the channel is closed. Throws FrameError when it is over its bound. */
  send(msg: Message<M>): boolean {
    if (this.closed) return false;
    const bytes = encodeFrame(this.schema, msg, this.maxFrameBytes);
    try {
      this.conn.write(bytes);
      return true;
    } catch (err) {
      if (err instanceof ConnClosedError) return false;
      throw err;
    }
  }

  close(reason = 'closed'): void {
    if (this.#closeReason === null) this.#closeReason = reason;
    this.conn.close(reason);
  }

  #receive(bytes: Uint8Array): void {
    if (this.#closeReason !== null) return;
    let msgs: Message<M>[];
    try {
      msgs = this.#decoder.push(bytes);
    } catch (err) {
      this.close(err instanceof FrameError ? err.message : `frame decoding failed: ${String(err)}`);
      return;
    }
    for (const m of msgs) {
      if (this.#closeReason !== null) return;
      try {
        this.#onMessage?.(m);
      } catch (err) {
        this.close(`handling "${m.t}" failed: ${err instanceof Error ? err.message : String(err)}`);
        return;
      }
    }
  }

  #closed(reason: string): void {
    if (this.#closeReason === null) this.#closeReason = reason;
    for (const fn of this.#onClose.splice(0)) fn(this.#closeReason);
  }
}
