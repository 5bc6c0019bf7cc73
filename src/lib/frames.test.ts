import { describe, expect, test } from 'bun:test';
import { encode } from './codec.ts';
import { encodeFrame, type FrameSchema, FrameDecoder, FrameError, is } from './frames.ts';
import { seededRandom as rng } from './rng.ts';

interface TestMessages {
  ping: { n: number };
  note: { text: string };
}

const SCHEMA: FrameSchema<TestMessages> = {
  ping: { version: 1, maxBytes: 64, check: is.shape({ n: is.number() }) },
  note: { version: 2, maxBytes: 64 * 1024, check: is.shape({ text: is.string(60_000) }) },
};

function raw(body: unknown): Uint8Array {
  const b = encode(body);
  const out = new Uint8Array(4 + b.length);
  new DataView(out.buffer).setUint32(0, b.length);
  out.set(b, 4);
  return out;
}


describe('frames', () => {
  test('round trip, one frame per chunk and several frames in one chunk', () => {
    const d = new FrameDecoder(SCHEMA);
    const a = encodeFrame(SCHEMA, { t: 'ping', b: { n: 1 } });
    const b = encodeFrame(SCHEMA, { t: 'note', b: { text: 'hello' } });
    expect(d.push(a)).toEqual([{ t: 'ping', b: { n: 1 } }]);
    const both = new Uint8Array(a.length + b.length);
    both.set(a);
    both.set(b, a.length);
    expect(d.push(both)).toEqual([{ t: 'ping', b: { n: 1 } }, { t: 'note', b: { text: 'hello' } }]);
    expect(d.buffered).toBe(0);
  });

  test('frames split at every byte boundary decode the same', () => {
    const frames = [
      encodeFrame(SCHEMA, { t: 'ping', b: { n: 7 } }),
      encodeFrame(SCHEMA, { t: 'note', b: { text: 'x'.repeat(300) } }),
      encodeFrame(SCHEMA, { t: 'ping', b: { n: 8 } }),
    ];
    const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
    let off = 0;
    for (const f of frames) { all.set(f, off); off += f.length; }
    for (const size of [1, 2, 3, 5, 17, 100]) {
      const d = new FrameDecoder(SCHEMA);
      const got = [];
      for (let i = 0; i < all.length; i += size) got.push(...d.push(all.subarray(i, i + size)));
      expect(got.map((m) => m.t)).toEqual(['ping', 'note', 'ping']);
      expect((got[1]!.b as { text: string }).text.length).toBe(300);
    }
  });

  test('an oversize length is refused from the header alone', () => {
    const d = new FrameDecoder(SCHEMA, { maxFrameBytes: 1024 });
    const header = new Uint8Array([0, 0, 0x10, 0x01]); // 4097 bytes announced, nothing sent
    expect(() => d.push(header)).toThrow(FrameError);
    expect(d.buffered).toBe(0);
    // The default bound is 4 MiB.
    expect(() => new FrameDecoder(SCHEMA).push(new Uint8Array([0xff, 0xff, 0xff, 0xff]))).toThrow(/over the bound/);
  });

  test('a frame over its type bound is refused both ways', () => {
    expect(() => encodeFrame(SCHEMA, { t: 'ping', b: { n: 1, pad: 'x'.repeat(100) } as never })).toThrow(FrameError);
    const d = new FrameDecoder(SCHEMA);
    expect(() => d.push(raw({ t: 'ping', v: 1, b: { n: 1, pad: 'x'.repeat(100) } }))).toThrow(/over its bound/);
  });

  test('unknown type, wrong version, malformed body, not a map, empty frame: FrameError', () => {
    const cases: [Uint8Array, RegExp][] = [
      [raw({ t: 'nope', v: 1, b: {} }), /unknown frame type "nope"/],
      [raw({ t: 'toString', v: 1, b: {} }), /unknown frame type/],
      [raw({ t: 'ping', v: 2, b: { n: 1 } }), /version 2/],
      [raw({ t: 'ping', v: 1, b: { n: 'one' } }), /n: not a finite number/],
      [raw([1, 2, 3]), /not a map/],
      [raw('hello'), /not a map/],
      [new Uint8Array([0, 0, 0, 0]), /empty frame/],
      [new Uint8Array([0, 0, 0, 2, 0xc1, 0xc1]), /undecodable/],
      [new Uint8Array([0, 0, 0, 3, 0x01, 0x02, 0x03]), /undecodable|not a map/], // trailing data
    ];
    for (const [bytes, re] of cases) {
      const d = new FrameDecoder(SCHEMA);
      expect(() => d.push(bytes)).toThrow(re);
      // Poisoned: the stream is out of sync, further input is refused too.
      expect(() => d.push(encodeFrame(SCHEMA, { t: 'ping', b: { n: 1 } }))).toThrow(FrameError);
    }
  });

  test('fuzz: random bytes and mutated frames only ever give messages or FrameError', () => {
    const rand = rng(0x5eed);
    const good = encodeFrame(SCHEMA, { t: 'note', b: { text: 'the quick brown fox' } });
    for (let round = 0; round < 3000; round++) {
      let bytes: Uint8Array;
      if (round % 2 === 0) {
        bytes = new Uint8Array(1 + Math.floor(rand() * 200));
        for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256);
        // Keep announced lengths small half the time so bodies actually get decoded.
        if (rand() < 0.5) { bytes[0] = 0; bytes[1] = 0; bytes[2] = 0; bytes[3] = Math.min(bytes.length - 4, bytes[3]!) & 0xff; }
      } else {
        bytes = good.slice();
        const flips = 1 + Math.floor(rand() * 4);
        for (let i = 0; i < flips; i++) bytes[4 + Math.floor(rand() * (bytes.length - 4))] = Math.floor(rand() * 256);
      }
      const d = new FrameDecoder(SCHEMA, { maxFrameBytes: 4096 });
      try {
        for (let i = 0; i < bytes.length; i += 7) d.push(bytes.subarray(i, i + 7));
      } catch (err) {
        if (!(err instanceof FrameError)) throw new Error(`round ${round}: ${String(err)} from ${Buffer.from(bytes).toString('hex')}`);
      }
    }
  });
});
