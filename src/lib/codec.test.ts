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
});
