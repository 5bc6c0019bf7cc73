/**
 * Builds dist/shoal: one executable with the Bun runtime inside.
 *   bun build.ts            linux-x64 (the default)
 *   bun build.ts --arm64    linux-arm64 (cross-compiling needs that Bun runtime in Bun's cache)
 *   bun build.ts --outfile PATH            write the executable there instead of dist/
 *   SHOAL_BUILD_VERSION=0.2.0 bun build.ts  another version than package.json's (the upgrade tests build N+1)
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const arm64 = process.argv.includes('--arm64');
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

const started = performance.now();
const proc = Bun.spawnSync(
  [
    process.execPath, 'build', '--compile', `--target=${target}`, '--bytecode', '--format=esm', '--minify-syntax',
    `--define=SHOAL_VERSION=${JSON.stringify(version)}`, `--define=SHOAL_COMMIT=${JSON.stringify(commit || 'unknown')}`,
    join(import.meta.dir, 'src', 'main.ts'), '--outfile', outfile,
  ],
  { stdout: 'inherit', stderr: 'inherit' },
);
if (proc.exitCode !== 0) {
  console.error(`build failed (exit ${proc.exitCode})`);
  process.exit(proc.exitCode ?? 1);
}
console.log(`built ${outfile} (shoal ${version}) for ${target} in ${Math.round(performance.now() - started)} ms`);
