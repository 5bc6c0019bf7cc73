// Every proposal is wrapped with its origin so the proposing host can match the applied entry to the
// waiting caller: [version 1][u32 incarnation hi][u32 incarnation lo][f64 seq][payload].
export const ENVELOPE_HEADER_BYTES = 17;
const VERSION = 1;

export interface Envelope {
  incarnationHi: number;
  incarnationLo: number;
  seq: number;
  payload: Uint8Array;
}

// The seq's f64 goes through this scratch pair rather than a DataView per entry (a DataView and a
// `.buffer` on a fresh small array cost ~8% of the CPU of a commit, bench/raft.ts).
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function putU32(out: Uint8Array, at: number, v: number): void {
  out[at] = v >>> 24;
  out[at + 1] = (v >>> 16) & 0xff;
  out[at + 2] = (v >>> 8) & 0xff;
  out[at + 3] = v & 0xff;
}

function getU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/*
 * Envelopes are cut from shared slabs rather than each given an ArrayBuffer of its own: an
 * ArrayBuffer per proposal was ~12% of a commit's CPU (bench/raft.ts), and a small typed array of
 * its own would be worse (unwrap's subarray makes the engine move its bytes out of the GC heap, ~10%
 * of a commit). A slab lives as long as any envelope cut from it (the log holds entries until
 * compaction anyway); one bigger than SLAB_BYTES gets a buffer of its own.
 */
const SLAB_BYTES = 64 * 1024;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabUsed = 0;

function cut(n: number): Uint8Array {
  if (n > SLAB_BYTES / 4) return new Uint8Array(new ArrayBuffer(n));
  if (slabUsed + n > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabUsed = 0;
  }
  const out = new Uint8Array(slab, slabUsed, n);
  slabUsed += n;
  return out;
}

export function wrap(incarnationHi: number, incarnationLo: number, seq: number, payload: Uint8Array): Uint8Array {
  const out = cut(ENVELOPE_HEADER_BYTES + payload.length);
  out[0] = VERSION;
  putU32(out, 1, incarnationHi);
  putU32(out, 5, incarnationLo);
  // Big-endian on the wire, as DataView.setFloat64 wrote it before.
  f64[0] = seq;
  for (let i = 0; i < 8; i++) out[9 + i] = f64Bytes[LITTLE_ENDIAN ? 7 - i : i]!;
  out.set(payload, ENVELOPE_HEADER_BYTES);
  return out;
}

/** null for data that is not an envelope (e.g. the empty entry a new leader appends). */
export function unwrap(data: Uint8Array): Envelope | null {
  if (data.length < ENVELOPE_HEADER_BYTES || data[0] !== VERSION) return null;
  for (let i = 0; i < 8; i++) f64Bytes[LITTLE_ENDIAN ? 7 - i : i] = data[9 + i]!;
  return {
    incarnationHi: getU32(data, 1),
    incarnationLo: getU32(data, 5),
    seq: f64[0]!,
    payload: data.subarray(ENVELOPE_HEADER_BYTES),
  };
}
