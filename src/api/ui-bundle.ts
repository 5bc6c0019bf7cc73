/**
 * The web UI's script, bundled for the browser when the server is built: imported with
 * `with { type: 'macro' }`, so `bun build --compile` runs this once and inlines the result, and no
 * bundler (nor any file of src/ui) is needed at run time. The bundler cannot be called from inside a
 * macro (it would wait on itself), hence its CLI in a child process.
 */
import { join } from 'node:path';

export function uiScript(): string {
  const entry = join(import.meta.dir, '..', 'ui', 'main.ts');
  const r = Bun.spawnSync([process.execPath, 'build', '--target=browser', '--format=esm', '--minify', entry], {
    env: { ...process.env, BUN_BE_BUN: '1' },
  });
  if (r.exitCode !== 0) throw new Error(`bundling the web UI (${entry}) failed: ${r.stderr.toString()}`);
  return r.stdout.toString();
}
