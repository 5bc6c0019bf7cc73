// npm run sim -- --seeds N [--seed S] [--duration MS] [--verbose]
// Runs N seeds starting at S (random S when left out). A failure prints the seed and how to replay it.
// With --control-plane: the control-plane simulation instead (control-plane/cli.ts).
if (process.argv.includes('--control-plane')) {
  await import('./control-plane/cli.ts');
  // That module exits the process with its verdict.
}
import { replayCommand, runSeed } from './cluster.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const seeds = Number(arg('seeds') ?? 100);
const start = arg('seed') !== undefined ? Number(arg('seed')) : Math.floor(Math.random() * 1e9);
const durationMs = arg('duration') !== undefined ? Number(arg('duration')) : undefined;
const verbose = process.argv.includes('--verbose');
if (!Number.isInteger(seeds) || seeds < 1 || !Number.isFinite(start)) {
  console.error('usage: npm run sim -- --seeds N [--seed S] [--duration MS] [--verbose]');
  process.exit(2);
}

const t0 = performance.now();
let failed = 0;
let steps = 0;
let committed = 0;
for (let s = start; s < start + seeds; s++) {
  const r = runSeed({ seed: s, durationMs });
  steps += r.steps;
  committed += r.committed;
  if (verbose) console.log(JSON.stringify({ ...r, trace: undefined }));
  if (!r.ok) {
    failed++;
    console.error(`\nFAIL seed ${s}: ${r.error}`);
    console.error(`last events:\n${(r.trace ?? []).map((l) => '  ' + l).join('\n')}`);
    console.error(`replay: ${replayCommand(s)}\n`);
  }
}
const secs = (performance.now() - t0) / 1000;
console.log(
  `${seeds - failed}/${seeds} seeds passed (from ${start}) in ${secs.toFixed(1)} s; ${steps} steps, ${committed} entries committed`,
);
process.exit(failed ? 1 : 0);
