import { describe, expect, test } from 'bun:test';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as msgpackr from 'msgpackr/pack';
import { decode, encode } from './codec.ts';

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

  test('no module loads msgpackr with its native string extractor (decoded strings would pin whole entries)', () => {
    const root = join(import.meta.dir, '..', '..');
    const offenders = [...sources(join(root, 'src')), ...sources(join(root, 'plugins'))]
      .filter((f) => /from ['"]msgpackr['"]|require\(['"]msgpackr['"]\)/.test(readFileSync(f, 'utf8')));
    expect(offenders).toEqual([]);
    // Under Bun `msgpackr/pack` is the whole library (its types declare less).
    expect((msgpackr as unknown as { isNativeAccelerationEnabled: boolean }).isNativeAccelerationEnabled).toBe(false);
  });
});
