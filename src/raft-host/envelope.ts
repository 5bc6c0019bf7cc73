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

export function wrap(incarnationHi: number, incarnationLo: number, seq: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(ENVELOPE_HEADER_BYTES + payload.length);
  const dv = new DataView(out.buffer);
  out[0] = VERSION;
  dv.setUint32(1, incarnationHi);
  dv.setUint32(5, incarnationLo);
  dv.setFloat64(9, seq);
  out.set(payload, ENVELOPE_HEADER_BYTES);
  return out;
}

/** null for data that is not an envelope (e.g. the empty entry a new leader appends). */
export function unwrap(data: Uint8Array): Envelope | null {
  if (data.length < ENVELOPE_HEADER_BYTES || data[0] !== VERSION) return null;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return {
    incarnationHi: dv.getUint32(1),
    incarnationLo: dv.getUint32(5),
    seq: dv.getFloat64(9),
    payload: data.subarray(ENVELOPE_HEADER_BYTES),
  };
}
