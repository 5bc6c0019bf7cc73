// The core must stay a pure function of its inputs: time arrives as tick(), randomness as cfg.rand,
// I/O is the host's. This scans every non-test source file under src/raft for ways around that.
import { describe, expect, test } from 'bun:test';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = import.meta.dir;

const FORBIDDEN: [RegExp, string][] = [
  [/\bDate\s*\.\s*now\b/, 'Date.now'],
  [/\bnew\s+Date\b/, 'new Date'],
  [/\bMath\s*\.\s*random\b/, 'Math.random'],
  [/\bsetTimeout\b/, 'setTimeout'],
  [/\bsetInterval\b/, 'setInterval'],
  [/\bsetImmediate\b/, 'setImmediate'],
  [/\bqueueMicrotask\b/, 'queueMicrotask'],
  [/\bprocess\b/, 'process'],
  [/\bBun\s*\./, 'Bun.'],
  [/\bperformance\s*\./, 'performance.'],
  [/\bcrypto\b/, 'crypto'],
  [/\bfetch\s*\(/, 'fetch('],
  [/\brequire\s*\(/, 'require('],
  [/\bimport\s*\(/, 'dynamic import('],
  [/\bglobalThis\b/, 'globalThis'],
];

/** Drop comments so prose may mention what the code must not do. */
function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1');
}

/** Every problem in one source text: forbidden tokens and imports that leave src/raft. */
export function impurities(src: string): string[] {
  const code = stripComments(src);
  const found: string[] = [];
  for (const [re, name] of FORBIDDEN) if (re.test(code)) found.push(name);
  for (const m of code.matchAll(/\b(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]/g)) {
    const spec = m[1];
    if (!spec.startsWith('./')) found.push(`import of '${spec}' (only ./ modules of src/raft are allowed)`);
  }
  for (const m of code.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm)) found.push(`side-effect import of '${m[1]}'`);
  return found;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (/\.(ts|js|mts|mjs)$/.test(name) && !/\.test(-helper)?\.[mc]?[tj]s$/.test(name)) out.push(path);
  }
  return out;
}

describe('purity of src/raft', () => {
  const files = sourceFiles(ROOT);

  test('the scanner sees the core files', () => {
    const names = files.map((f) => relative(ROOT, f));
    expect(names).toContain('raft.ts');
    expect(names).toContain('index.ts');
    expect(names.some((n) => n.includes('.test'))).toBe(false);
  });

  test('the scanner catches each forbidden token and import', () => {
    expect(impurities('const t = Date.now();')).toEqual(['Date.now']);
    expect(impurities('x = Math.random()')).toEqual(['Math.random']);
    expect(impurities('setTimeout(f, 1)')).toEqual(['setTimeout']);
    expect(impurities('if (process.env.X) {}')).toEqual(['process']);
    expect(impurities('Bun.file("x")')).toEqual(['Bun.']);
    expect(impurities("import { readFileSync } from 'node:fs';")).toHaveLength(1);
    expect(impurities("import { x } from 'bun:sqlite';")).toHaveLength(1);
    expect(impurities("import type { Task } from '../types/index.ts';")).toHaveLength(1);
    expect(impurities("import 'node:net';")).toHaveLength(1);
    expect(impurities('// Date.now is forbidden here\nconst a = 1;')).toEqual([]);
    expect(impurities("import { Raft } from './raft.ts';")).toEqual([]);
  });

  for (const file of files) {
    test(`${relative(ROOT, file)} uses no timers, I/O, randomness or outside modules`, () => {
      expect(impurities(readFileSync(file, 'utf8'))).toEqual([]);
    });
  }
});
