/**
 * A libp2p stream as the dispatcher's `Conn`: a reliable, ordered byte stream. With it, FrameChannel
 * (length-prefixed msgpack frames, typed and bounded) runs over libp2p unchanged.
 */
import type { Connection, Stream } from '@libp2p/interface';
import { type Conn, ConnClosedError } from '../manager/dispatcher/conn.ts';

/** How long a graceful close may take to flush before the stream is reset. */
const CLOSE_FLUSH_MS = 5_000;
/** Bytes queued towards a peer that does not read before the stream is reset (a stuck reader). */
export const DEFAULT_MAX_QUEUED_BYTES = 64 * 1024 * 1024;

export class StreamConn implements Conn {
  #closeReason: string | null = null;
  #onClose: ((reason: string) => void)[] = [];
  #fired = false;
  readonly remoteAddr?: string;

  constructor(readonly stream: Stream, connection?: Connection, opts: { maxQueuedBytes?: number } = {}) {
    this.remoteAddr = connection ? hostOf(connection.remoteAddr.toString()) : undefined;
    stream.maxWriteBufferLength = opts.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    stream.addEventListener('close', (evt) => {
      if (evt.error) {
        this.#closeReason ??= `stream ${evt.local ? 'aborted' : 'reset by peer'}: ${evt.error.message}`;
        this.#fire();
      } else if (stream.readableEnded || stream.readBufferLength === 0) {
        this.#closeReason ??= 'peer closed';
        this.#fire();
      }
      // else: a graceful close with data still to deliver; 'end' follows once it has been read.
    });
    // The peer finished writing and everything it wrote has been delivered: our protocols are
    // conversations, so that ends this one. ('remoteCloseWrite' can come before the last data.)
    stream.addEventListener('end', () => this.close('peer closed'));
  }

  get closed(): boolean {
    return this.#closeReason !== null || this.stream.status !== 'open';
  }

  write(bytes: Uint8Array): void {
    if (this.closed) throw new ConnClosedError(`stream to ${this.remoteAddr ?? 'peer'} is closed`);
    try {
      // false means "wait for drain"; the stream keeps the bytes, bounded by maxWriteBufferLength.
      this.stream.send(bytes);
    } catch (err) {
      throw new ConnClosedError(`stream to ${this.remoteAddr ?? 'peer'} is closed (${err instanceof Error ? err.message : String(err)})`);
    }
  }

  onData(fn: (bytes: Uint8Array) => void): void {
    // libp2p holds what arrived before the first listener and delivers it when one is added.
    this.stream.addEventListener('message', (evt) => {
      const data = evt.data;
      fn(data instanceof Uint8Array ? data : data.subarray());
    });
  }

  onClose(fn: (reason: string) => void): void {
    if (this.#fired) queueMicrotask(() => fn(this.#closeReason ?? 'closed'));
    else this.#onClose.push(fn);
  }

  close(reason = 'closed'): void {
    if (this.#closeReason !== null && this.stream.status !== 'open') return;
    this.#closeReason ??= reason;
    if (this.stream.status === 'open') {
      // Flush what was written (e.g. a refusal that says why), then close; reset if that stalls.
      this.stream.close({ signal: AbortSignal.timeout(CLOSE_FLUSH_MS) }).catch((err: unknown) => {
        this.stream.abort(err instanceof Error ? err : new Error(String(err)));
      });
    }
    this.#fire();
  }

  #fire(): void {
    if (this.#fired) return;
    this.#fired = true;
    for (const fn of this.#onClose.splice(0)) fn(this.#closeReason ?? 'closed');
  }
}

/** The IP address of a multiaddr such as /ip4/10.0.0.2/tcp/4242 (Docker's Node.Status.Addr is an IP); else the multiaddr. */
function hostOf(ma: string): string {
  const m = /^\/ip[46]\/([^/]+)\//.exec(ma);
  return m ? m[1]! : ma;
}
