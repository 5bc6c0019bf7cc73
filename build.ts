/**
 * Builds dist/shoal: one executable with the Bun runtime inside.
 *   bun build.ts            linux-x64 (the default)
 *   bun build.ts --arm64    linux-arm64 (cross-compiling needs that Bun runtime in Bun's cache)
 *   bun build.ts --outfile PATH            write the executable there instead of dist/
 *   SHOAL_BUILD_VERSION=0.2.0 bun build.ts  another version than package.json's (the upgrade tests build N+1)
 *   bun build.ts --metafile also write <outfile>.meta.json (the bundle's inputs and their sizes;
 *                           `bun scripts/bundle-composition.ts` sums them by package)
 *   bun build.ts --trace-modules   every module notes when it is evaluated (scripts/trace-modules.ts)
 *   bun build.ts --fast-start   bytecode for every function and unminified names: ~10 MB bigger
 *                           (over the 115 MB budget), the daemon starts ~0.2 s sooner. The default
 *                           (bytecode for module top levels, minified names kept by keepNames) is
 *                           the size the project ships; docs/footprint.md has the figures.
 *                           (`--small`, the old name of the default, is still accepted.)
 * The bytecode is laid out by scripts/bytecode-order/*.order when they are there (recorded by
 * scripts/bytecode-order.ts from runs of a worker, a manager and the CLI; docs/footprint.md).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { leaveOut } from './scripts/leave-out.ts';
import { traceModules } from './scripts/trace-modules.ts';

const arm64 = process.argv.includes('--arm64');
const small = !process.argv.includes('--fast-start');
const target = arm64 ? 'bun-linux-arm64' : 'bun-linux-x64';
const at = process.argv.indexOf('--outfile');
const outfile = at > 0 && process.argv[at + 1] ? resolve(process.argv[at + 1]!) : join(import.meta.dir, 'dist', arm64 ? 'shoal-arm64' : 'shoal');
mkdirSync(dirname(outfile), { recursive: true });

const pkg = await Bun.file(join(import.meta.dir, 'package.json')).json();
const version: string = process.env.SHOAL_BUILD_VERSION || pkg.version;
if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)) {
  console.error(`SHOAL_BUILD_VERSION "${version}": expected MAJOR.MINOR.PATCH (e.g. 0.2.0)`);
  process.exit(2);
}
const commit = Bun.spawnSync(['git', 'rev-parse', '--short', 'HEAD'], { cwd: import.meta.dir }).stdout.toString().trim();

const orderFiles = ['worker', 'manager', 'cli'].map((n) => join(import.meta.dir, 'scripts', 'bytecode-order', `${n}.order`)).filter((f) => existsSync(f));

const started = performance.now();
const result = await Bun.build({
  entrypoints: [join(import.meta.dir, 'src', 'main.ts')],
  // The bytecode a worker, a manager and the CLI use first, laid out together at the front:
  // a daemon touches fewer pages of it (scripts/bytecode-order.ts records the files).
  compile: { target, outfile, bytecodeOrder: orderFiles.length ? orderFiles : null },
  bytecode: true,
  ...(small ? { bytecodeDepth: 0 } : {}),
  format: 'esm',
  minify: small ? { syntax: true, whitespace: true, identifiers: true, keepNames: true } : { syntax: true },
  define: {
    SHOAL_VERSION: JSON.stringify(version),
    SHOAL_COMMIT: JSON.stringify(commit || 'unknown'),
  },
  metafile: process.argv.includes('--metafile'),
  plugins: process.argv.includes('--trace-modules') ? [leaveOut, traceModules] : [leaveOut],
}).catch((e: unknown) => ({ success: false as const, logs: [e], metafile: undefined }));
if (!result.success) {
  for (const l of result.logs) console.error(l);
  console.error('build failed');
  process.exit(1);
}
if (result.metafile) writeFileSync(`${outfile}.meta.json`, JSON.stringify(result.metafile));
console.log(`built ${outfile} (shoal ${version}) for ${target}${small ? '' : ' (--fast-start)'} in ${Math.round(performance.now() - started)} ms`);
