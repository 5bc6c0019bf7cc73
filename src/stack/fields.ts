/**
 * Typed reads of compose values, each naming its path on bad input, and the unsupported-key check:
 * every key a file holds is either converted, an `x-` extension, or reported.
 */
import { ComposeError, isMap, type Tree } from './load.ts';
import { parseCpus, parseDuration, parseSize, splitWords } from '../cli/units.ts';

export interface Warn { (path: string, why?: string): void }

/** Keys of `m` outside `known` (and not `x-…`) → one warning each, naming the path. */
export function checkKeys(m: Tree, known: readonly string[], path: string, warn: Warn): void {
  for (const k of Object.keys(m)) if (!known.includes(k) && !k.startsWith('x-')) warn(`${path}.${k}`);
}

export function map(v: unknown, path: string): Tree {
  if (v === undefined || v === null) return {};
  if (!isMap(v)) throw new ComposeError(`${path}: expected a mapping`);
  return v;
}

export function str(v: unknown, path: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new ComposeError(`${path}: expected a string`);
}

export function int(v: unknown, path: string, min = 0): number | undefined {
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min) throw new ComposeError(`${path}: expected an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  return n;
}

export function bool(v: unknown, path: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'false') return v === 'true';
  throw new ComposeError(`${path}: expected true or false`);
}

/** `units.ts` parsers report `--flag`; here the flag is the compose path. */
function unit<T>(v: unknown, path: string, parse: (flag: string, raw: string) => T): T | undefined {
  const s = str(v, path);
  if (s === undefined) return undefined;
  try {
    return parse(path, s);
  } catch (e) {
    throw new ComposeError((e as Error).message.replace(`--${path}`, path));
  }
}

export const duration = (v: unknown, path: string) => unit(v, path, parseDuration);
export const size = (v: unknown, path: string) => (typeof v === 'number' ? v : unit(v, path, parseSize));
export const cpus = (v: unknown, path: string) => unit(v, path, parseCpus);

/** A string list, or a string split like a shell would (`command: python3 -m http.server`). */
export function words(v: unknown, path: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return unit(v, path, splitWords);
  if (Array.isArray(v)) return v.map((x, i) => str(x, `${path}[${i}]`) ?? '');
  throw new ComposeError(`${path}: expected a string or a list of strings`);
}

/** `KEY: value` mapping or `["KEY=value"]` list → `KEY=value` strings; a bare key takes `env`'s value. */
export function keyValues(v: unknown, path: string, env: Record<string, string | undefined>): string[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) {
    return v.flatMap((x, i) => {
      const s = str(x, `${path}[${i}]`) ?? '';
      if (s.includes('=')) return [s];
      return env[s] === undefined ? [] : [`${s}=${env[s]}`];
    });
  }
  return Object.entries(map(v, path)).flatMap(([k, x]) => {
    if (x === null || x === undefined) return env[k] === undefined ? [] : [`${k}=${env[k]}`];
    return [`${k}=${str(x, `${path}.${k}`)}`];
  });
}

/** Labels: a mapping or a `["k=v"]` list; a bare `k` (or `k:` with no value) is an empty label. */
export function labels(v: unknown, path: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  const entries: [string, string][] = Array.isArray(v)
    ? v.map((x, i) => {
        const s = str(x, `${path}[${i}]`) ?? '';
        const eq = s.indexOf('=');
        return eq < 0 ? [s, ''] : [s.slice(0, eq), s.slice(eq + 1)];
      })
    : Object.entries(map(v, path)).map(([k, x]) => [k, str(x, `${path}.${k}`) ?? '']);
  for (const [k] of entries) if (!k) throw new ComposeError(`${path}: a label needs a key`);
  return Object.fromEntries(entries);
}
