/**
 * What the bundle in dist/shoal is made of: `bun build.ts --metafile`, then
 *   bun scripts/bundle-composition.ts [dist/shoal.meta.json] [--top N]
 * prints the JavaScript bytes each package (or each src/ directory) puts in the bundle, largest
 * first, and every package bundled from more than one node_modules directory (two versions of it).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface Metafile {
  outputs: Record<string, { bytes: number; inputs?: Record<string, { bytesInOutput: number }> }>;
}

const args = process.argv.slice(2);
const topAt = args.indexOf('--top');
const top = topAt >= 0 ? Number(args[topAt + 1]) : 40;
const file = args.find((a, i) => !a.startsWith('--') && i !== topAt + 1) ?? join(import.meta.dir, '..', 'dist', 'shoal.meta.json');
let meta: Metafile;
try {
  meta = JSON.parse(readFileSync(file, 'utf8'));
} catch (e) {
  console.error(`cannot read ${file} (${(e as Error).message}): run "bun build.ts --metafile" first`);
  process.exit(2);
}

/** `…/node_modules/a/node_modules/@b/c/x.js` → package `@b/c` from directory `a>@b/c`; `src/api/x.ts` → `src/api`. */
function owner(path: string): { pkg: string; dir: string } {
  const parts = path.split('node_modules/');
  if (parts.length === 1) return { pkg: path.split('/').slice(0, 2).join('/'), dir: '' };
  const names = parts.slice(1).map((p) => /^(@[^/]+\/[^/]+|[^/]+)/.exec(p)![1]!);
  return { pkg: names[names.length - 1]!, dir: names.join('>') };
}

const bytes = new Map<string, number>();
const dirs = new Map<string, Set<string>>();
let total = 0;
for (const [name, out] of Object.entries(meta.outputs)) {
  if (!out.inputs) {
    console.log(`asset ${name}: ${out.bytes} bytes`);
    continue;
  }
  for (const [path, input] of Object.entries(out.inputs)) {
    const { pkg, dir } = owner(path);
    bytes.set(pkg, (bytes.get(pkg) ?? 0) + input.bytesInOutput);
    if (dir) dirs.set(pkg, (dirs.get(pkg) ?? new Set()).add(dir));
    total += input.bytesInOutput;
  }
}
console.log(`${(total / 1e6).toFixed(2)} MB of JavaScript from ${bytes.size} packages and src/ directories`);
for (const [pkg, b] of [...bytes].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`  ${(b / 1024).toFixed(1).padStart(8)} KiB  ${(100 * b / total).toFixed(1).padStart(5)}%  ${pkg}`);
}
const twice = [...dirs].filter(([, d]) => d.size > 1);
console.log(twice.length ? 'bundled from more than one directory:' : 'no package is bundled from more than one directory');
for (const [pkg, d] of twice) console.log(`  ${pkg}: ${[...d].join(', ')}`);
