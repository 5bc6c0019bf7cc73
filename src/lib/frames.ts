/**
 * Length-prefixed msgpack frames: a u32 big-endian body length, then a msgpack map
 * `{ t: type, v: version, b: body }`. Every frame type is declared in a `FrameSchema` with its
 * version, a size bound and a body check; decoding never trusts a length or a type tag: anything
 * unexpected is a `FrameError`, which the owner of the connection answers by closing it.
 */
import { decode, encode } from './codec.ts';
import { ShoalError } from './errors.ts';

/** The default bound on one frame's body, before any type's own (smaller) bound applies. */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;
const HEADER_BYTES = 4;

/** A frame that cannot be accepted: too large, undecodable, of an unknown type or version, malformed. */
export class FrameError extends ShoalError {
  override readonly status = 400;
}

/** Returns null when `body` has the expected shape, else what is wrong with it. */
export type BodyCheck = (body: unknown) => string | null;

export interface FrameTypeSpec {
  /** The version this end speaks; a frame with another version is refused. */
  version: number;
  /** Largest accepted body of this type, in bytes of the whole msgpack frame body. */
  maxBytes: number;
  check: BodyCheck;
}

/** Frame types by name. `M` maps each name to its body type, for typed send/receive. */
export type FrameSchema<M> = { readonly [K in keyof M]: FrameTypeSpec };

/** One decoded message of a schema: `{ t: 'heartbeat', b: {...} }`. */
export type Message<M> = { [K in keyof M & string]: { t: K; b: M[K] } }[keyof M & string];

/** Encode one message as a frame. Throws FrameError when it exceeds its type's bound (a sender bug). */
export function encodeFrame<M>(schema: FrameSchema<M>, msg: Message<M>, maxFrameBytes = MAX_FRAME_BYTES): Uint8Array {
  const spec = specOf(schema, msg.t);
  if (!spec) throw new FrameError(`cannot send unknown frame type "${msg.t}"`);
  const body = encode({ t: msg.t, v: spec.version, b: msg.b });
  const bound = Math.min(spec.maxBytes, maxFrameBytes);
  if (body.length > bound) throw new FrameError(`frame "${msg.t}" is ${body.length} bytes, over its bound of ${bound}`);
  const out = new Uint8Array(HEADER_BYTES + body.length);
  // Byte by byte, not through a DataView: under Bun reading `out.buffer` of a fresh array is costly
  // (JSC moves its storage out of the GC heap), ~10 % of the CPU at 10k tasks in manager-scale.
  const n = body.length;
  out[0] = n >>> 24;
  out[1] = (n >>> 16) & 0xff;
  out[2] = (n >>> 8) & 0xff;
  out[3] = n & 0xff;
  out.set(body, HEADER_BYTES);
  return out;
}

/** Size of a message once framed, without the header; for senders that split batches. */
export function encodedSize(value: unknown): number {
  return encode(value).length;
}

function specOf<M>(schema: FrameSchema<M>, t: unknown): FrameTypeSpec | undefined {
  if (typeof t !== 'string' || !Object.hasOwn(schema, t)) return undefined;
  return (schema as Record<string, FrameTypeSpec>)[t];
}

/**
 * Turns arbitrary byte chunks (partial frames, several frames per chunk) into messages. After the
 * first FrameError the decoder is poisoned: the stream is out of sync and must be closed.
 */
export class FrameDecoder<M> {
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #need = -1; // body length of the frame being assembled, -1 while reading the header
  #failed: FrameError | null = null;
  readonly maxFrameBytes: number;

  constructor(readonly schema: FrameSchema<M>, opts: { maxFrameBytes?: number } = {}) {
    this.maxFrameBytes = opts.maxFrameBytes ?? MAX_FRAME_BYTES;
  }

  /** Bytes held for an incomplete frame (bounded by the header plus `maxFrameBytes`). */
  get buffered(): number { return this.#buffered; }

  /** Feed one chunk; returns the messages it completed. Throws FrameError on bad input. */
  push(chunk: Uint8Array): Message<M>[] {
    if (this.#failed) throw this.#failed;
    try {
      return this.#push(chunk);
    } catch (err) {
      this.#failed = err instanceof FrameError ? err : new FrameError(`undecodable frame: ${String(err)}`);
      this.#chunks = [];
      this.#buffered = 0;
      throw this.#failed;
    }
  }

  #push(chunk: Uint8Array): Message<M>[] {
    const out: Message<M>[] = [];
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    for (;;) {
      if (this.#need < 0) {
        if (this.#buffered < HEADER_BYTES) return out;
        const header = this.#take(HEADER_BYTES);
        const len = ((header[0]! << 24) | (header[1]! << 16) | (header[2]! << 8) | header[3]!) >>> 0;
        if (len === 0) throw new FrameError('empty frame');
        // Refuse before buffering (let alone allocating) a body we would never accept.
        if (len > this.maxFrameBytes) throw new FrameError(`frame of ${len} bytes is over the bound of ${this.maxFrameBytes}`);
        this.#need = len;
      }
      if (this.#buffered < this.#need) return out;
      const body = this.#take(this.#need);
      this.#need = -1;
      out.push(this.#decodeBody(body));
    }
  }

  #decodeBody(body: Uint8Array): Message<M> {
    let raw: unknown;
    try {
      raw = decode(body);
    } catch (err) {
      throw new FrameError(`undecodable frame body: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!isPlainObject(raw)) throw new FrameError('frame is not a map');
    const { t, v, b } = raw as { t: unknown; v: unknown; b: unknown };
    const spec = specOf(this.schema, t);
    if (!spec) throw new FrameError(`unknown frame type ${typeof t === 'string' ? `"${t.slice(0, 64)}"` : typeof t}`);
    if (v !== spec.version) throw new FrameError(`frame "${t as string}" has version ${String(v).slice(0, 16)}, this end speaks ${spec.version}`);
    if (body.length > spec.maxBytes) throw new FrameError(`frame "${t as string}" of ${body.length} bytes is over its bound of ${spec.maxBytes}`);
    let problem: string | null;
    try {
      problem = spec.check(b);
    } catch (err) {
      problem = String(err);
    }
    if (problem) throw new FrameError(`malformed "${t as string}" frame: ${problem}`);
    return { t, b } as Message<M>;
  }

  /** Remove and return the first `n` buffered bytes (n ≤ buffered). */
  #take(n: number): Uint8Array {
    const first = this.#chunks[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      this.#buffered -= n;
      return out;
    }
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const c = this.#chunks[0]!;
      const k = Math.min(c.length, n - off);
      out.set(c.subarray(0, k), off);
      off += k;
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    this.#buffered -= n;
    return out;
  }
}

export function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof Uint8Array) && !(x instanceof Date);
}

// ---------------------------------------------------------------- body checks

/** Small combinators for body checks: each returns null or what is wrong, naming the field. */
export const is = {
  string: (max = 4096): BodyCheck => (x) => typeof x === 'string' ? (x.length <= max ? null : `longer than ${max}`) : 'not a string',
  number: (): BodyCheck => (x) => typeof x === 'number' && Number.isFinite(x) ? null : 'not a finite number',
  boolean: (): BodyCheck => (x) => typeof x === 'boolean' ? null : 'not a boolean',
  oneOf: (values: readonly string[]): BodyCheck => (x) => typeof x === 'string' && values.includes(x) ? null : `not one of ${values.join('|')}`,
  any: (): BodyCheck => () => null,
  object: (): BodyCheck => (x) => isPlainObject(x) ? null : 'not a map',
  optional: (c: BodyCheck): BodyCheck => (x) => x === undefined || x === null ? null : c(x),
  array: (of: BodyCheck, max: number): BodyCheck => (x) => {
    if (!Array.isArray(x)) return 'not an array';
    if (x.length > max) return `more than ${max} items`;
    for (let i = 0; i < x.length; i++) {
      const p = of(x[i]);
      if (p) return `[${i}]: ${p}`;
    }
    return null;
  },
  /** A map with at least these fields (others are allowed: newer peers may add optional fields). */
  shape: (fields: Record<string, BodyCheck>): BodyCheck => (x) => {
    if (!isPlainObject(x)) return 'not a map';
    for (const [k, c] of Object.entries(fields)) {
      const p = c(x[k]);
      if (p) return `${k}: ${p}`;
    }
    return null;
  },
};
