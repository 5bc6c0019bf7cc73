/**
 * Builds dist/shoal: one executable with the Bun runtime inside.
 *   bun build.ts            linux-x64 (the default)
 *   bun build.ts --arm64    linux-arm64 (cross-compiling needs that Bun runtime in Bun's cache)
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const arm64 = process.argv.includes('--arm64');
const target = arm64 ? 'bun-linux-arm64' : 'bun-linux-x64';
const outfile = join(import.meta.dir, 'dist', arm64 ? 'shoal-arm64' : 'shoal');
mkdirSync(join(import.meta.dir, 'dist'), { recursive: true });

const pkg = await Bun.file(join(import.meta.dir, 'package.json')).json();
const commit = Bun.spawnSync(['git', 'rev-parse', '--short', 'HEAD'], { cwd: import.meta.dir }).stdout.toString().trim();

const started = performance.now();
const proc = Bun.spawnSync(
  [
    process.execPath, 'build', '--compile', `--target=${target}`, '--bytecode', '--format=esm', '--minify-syntax',
    `--define=SHOAL_VERSION=${JSON.stringify(pkg.version)}`, `--define=SHOAL_COMMIT=${JSON.stringify(commit || 'unknown')}`,
    join(import.meta.dir, 'src', 'main.ts'), '--outfile', outfile,
  ],
  { stdout: 'inherit', stderr: 'inherit' },
);
if (proc.exitCode !== 0) {
  console.error(`build failed (exit ${proc.exitCode})`);
  process.exit(proc.exitCode ?? 1);
}
console.log(`built ${outfile} for ${target} in ${Math.round(performance.now() - started)} ms`);
