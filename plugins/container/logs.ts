/**
 * The engine's log stream as `LogLine`s. Without a TTY the engine multiplexes stdout and stderr
 * into frames: an 8-byte header (stream byte 1|2, three zero bytes, big-endian payload length) then
 * the payload. With `timestamps=1` every line starts with an RFC 3339 time with nanoseconds and a
 * space. A frame may end mid-line and a chunk from the socket may end mid-frame, so both are
 * buffered here.
 */
import type { LogLine } from '../../src/executor/contract.ts';

/** A frame longer than this is taken for a corrupt stream, not buffered without end. */
const MAX_FRAME_BYTES = 16 << 20;
/** A line that grows past this without a newline is cut and emitted. */
const MAX_LINE_BYTES = 1 << 20;

type Stream = LogLine['stream'];

export class LogDemuxer {
  #pending: Uint8Array = new Uint8Array(0);
  #partial: Record<Stream, string> = { stdout: '', stderr: '' };
  readonly #decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };

  /** Feed bytes from the engine; returns the lines they complete. */
  push(chunk: Uint8Array): LogLine[] {
    const buf = this.#pending.length ? concat(this.#pending, chunk) : chunk;
    const out: LogLine[] = [];
    let off = 0;
    while (buf.length - off >= 8) {
      const kind = buf[off]!;
      const len = ((buf[off + 4]! << 24) >>> 0) + (buf[off + 5]! << 16) + (buf[off + 6]! << 8) + buf[off + 7]!;
      if (kind > 2 || buf[off + 1] !== 0 || buf[off + 2] !== 0 || buf[off + 3] !== 0 || len > MAX_FRAME_BYTES) {
        throw new Error(`container log stream: bad frame header at byte ${off} (stream ${kind}, length ${len})`);
      }
      if (buf.length - off - 8 < len) break;
      const stream: Stream = kind === 2 ? 'stderr' : 'stdout';
      const text = this.#decoders[stream].decode(buf.subarray(off + 8, off + 8 + len), { stream: true });
      this.#lines(stream, text, out);
      off += 8 + len;
    }
    this.#pending = off === buf.length ? new Uint8Array(0) : buf.slice(off);
    return out;
  }

  /** The stream ended: whatever is left without a newline is a last line. */
  end(): LogLine[] {
    const out: LogLine[] = [];
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = this.#partial[stream] + this.#decoders[stream].decode();
      this.#partial[stream] = '';
      if (rest) out.push(parseLine(stream, rest));
    }
    return out;
  }

  #lines(stream: Stream, text: string, out: LogLine[]): void {
    let acc = this.#partial[stream] + text;
    for (let nl = acc.indexOf('\n'); nl >= 0; nl = acc.indexOf('\n')) {
      out.push(parseLine(stream, acc.slice(0, nl)));
      acc = acc.slice(nl + 1);
    }
    if (acc.length > MAX_LINE_BYTES) { out.push(parseLine(stream, acc)); acc = ''; }
    this.#partial[stream] = acc;
  }
}

/** "2026-11-25T08:00:00.123456789Z text" → a LogLine; a line without a time gets now. */
export function parseLine(stream: Stream, raw: string): LogLine {
  const sp = raw.indexOf(' ');
  const time = sp > 0 ? parseTime(raw.slice(0, sp)) : undefined;
  if (time === undefined) return { stream, time: Date.now(), line: stripCr(raw) };
  return { stream, time, line: stripCr(raw.slice(sp + 1)) };
}

const stripCr = (s: string) => (s.endsWith('\r') ? s.slice(0, -1) : s);

/** RFC 3339 with up to nanoseconds → ms since the epoch (truncated, never rounded up). */
export function parseTime(s: string): number | undefined {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(s);
  if (!m) return undefined;
  const base = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(base)) return undefined;
  return base + Number((m[2] ?? '0').padEnd(3, '0').slice(0, 3));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
