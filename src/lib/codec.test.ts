import { describe, expect, test } from 'bun:test';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as msgpackr from 'msgpackr/pack';
import { decode, encode, encodeEntry } from './codec.ts';

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : sources(p);
    return /\.ts$/.test(e.name) ? [p] : [];
  });
}

describe('codec', () => {
  test('round-trips plain objects', () => {
    const v = { a: 1, b: ['x', { c: true }], d: null };
    expect(decode(encode(v))).toEqual(v);
  });

  test('entries (records) decode to the same plain objects, with any number of shapes, by a fresh decoder', () => {
    const v = {
      at: 't',
      actions: Array.from({ length: 500 }, (_, i) => ({ op: 'update', n: 60 + (i % 80), object: { ID: `id${i}`, [`k${i % 150}`]: { x: [1, 'two', null, -2.5, 2 ** 40], u: undefined } } })),
    };
    const bytes = encodeEntry(v);
    expect(bytes.length).toBeLessThan(encode(v).length);
    const out = decode<typeof v>(bytes);
    expect(out).toEqual(v);
    expect(Object.getPrototypeOf(out.actions[3]!.object)).toBe(Object.prototype);
    // Nothing is shared between entries: each one alone is readable by a decoder that saw no other.
    encodeEntry({ other: { ID: 'x' } });
    const fresh = new msgpackr.Packr({ useRecords: false, mapsAsObjects: true });
    expect(fresh.unpack(encodeEntry({ a: [{ ID: 'y', Slot: 1 }, { ID: 'z', Slot: 2 }] }))).toEqual({ a: [{ ID: 'y', Slot: 1 }, { ID: 'z', Slot: 2 }] });
  });

  test('no module loads msgpackr with its native string extractor (decoded strings would pin whole entries)', () => {
    const root = join(import.meta.dir, '..', '..');
    const offenders = [...sources(join(root, 'src')), ...sources(join(root, 'plugins'))]
      .filter((f) => /from ['"]msgpackr['"]|require\(['"]msgpackr['"]\)/.test(readFileSync(f, 'utf8')));
    expect(offenders).toEqual([]);
    // Under Bun `msgpackr/pack` is the whole library (its types declare less).
    expect((msgpackr as unknown as { isNativeAccelerationEnabled: boolean }).isNativeAccelerationEnabled).toBe(false);
  });

  // The native-strings patch of msgpackr (scripts/patch-deps.mjs): strings of 16 bytes and more go
  // to a TextDecoder that keeps a leading U+FEFF. msgpackr's own dropped it from those over 64 bytes.
  test('msgpackr is patched (scripts/patch-deps.mjs: native-strings)', () => {
    const unpack = readFileSync(join(import.meta.dir, '..', '..', 'node_modules', 'msgpackr', 'unpack.js'), 'utf8');
    expect(unpack.split('// shoal-patch: native-strings').length - 1).toBe(2);
  });

  test('every string comes back as it was written, whatever its length, in frames and in entries', () => {
    const bom = '\uFEFF';
    const strings = [
      ...[1, 15, 16, 25, 64, 65, 200].map((n) => 'a'.repeat(n)),
      ...[15, 16, 40, 64, 100].map((n) => bom + 'b'.repeat(n)), // a leading BOM: dropped over 64 bytes before the patch
      'é'.repeat(8), 'é'.repeat(20), '€'.repeat(30), `${'x'.repeat(14)}\u{1F600}`, `${'y'.repeat(30)}\u{1F600}z`, '2026-12-07T21:13:25.123Z',
    ];
    const v = { at: 't', actions: strings.map((s, i) => ({ op: 'create', object: { ID: s, Name: `${s}.${i}`, Labels: { [s]: s } } })) };
    expect(decode(encode(v))).toEqual(v);
    expect(decode(encodeEntry(v))).toEqual(v);
    for (const s of strings) {
      expect(decode<string>(encode(s))).toBe(s);
      expect(decode<string>(encode(s)).length).toBe(s.length);
    }
  });

  test('invalid UTF-8 in a 16-64 byte string decodes to U+FFFD, as the JavaScript decoder did', () => {
    // fixstr of 20 bytes: 18 ASCII, then a lone continuation byte and a truncated two-byte lead
    const bytes = new Uint8Array([0xa0 + 20, ...new Array(18).fill(0x61), 0x80, 0xc3]);
    expect(decode<string>(bytes)).toBe(`${'a'.repeat(18)}\uFFFD\uFFFD`);
  });
});
