import { describe, expect, test } from 'bun:test';
import { ENVELOPE_HEADER_BYTES, unwrap, wrap } from './envelope.ts';

describe('proposal envelope', () => {
  test('the header is big-endian u32, u32, f64 after the version byte, and reads back', () => {
    for (const [hi, lo, seq] of [[0, 0, 1], [0xffffffff, 0x12345678, 123_456_789], [1, 2, 2 ** 52 + 1]] as const) {
      const payload = new Uint8Array([1, 2, 3]);
      const w = wrap(hi, lo, seq, payload);
      const ref = new Uint8Array(ENVELOPE_HEADER_BYTES + 3);
      const dv = new DataView(ref.buffer);
      ref[0] = 1;
      dv.setUint32(1, hi);
      dv.setUint32(5, lo);
      dv.setFloat64(9, seq);
      ref.set(payload, ENVELOPE_HEADER_BYTES);
      expect([...w]).toEqual([...ref]);
      expect(unwrap(w)).toEqual({ incarnationHi: hi, incarnationLo: lo, seq, payload });
    }
  });

  test('data that is not an envelope unwraps to null', () => {
    expect(unwrap(new Uint8Array(0))).toBeNull();
    expect(unwrap(new Uint8Array(ENVELOPE_HEADER_BYTES).fill(2))).toBeNull();
  });
});
