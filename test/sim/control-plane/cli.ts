// npm run sim -- --control-plane --seeds N [--seed S] [--chaos MS] [--verbose]   (or: npm run sim:cp -- …)
// Runs N seeds of the control-plane simulation starting at S (random S when left out). A failure
// prints the seed, the last events and how to replay it.
import { replayCommand, runControlPlaneSeed } from './run.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const seeds = Number(arg('seeds') ?? 20);
const start = arg('seed') !== undefined ? Number(arg('seed')) : Math.floor(Math.random() * 1e9);
const chaosMs = arg('chaos') !== undefined ? Number(arg('chaos')) : undefined;
const verbose = process.argv.includes('--verbose');
if (!Number.isInteger(seeds) || seeds < 1 || !Number.isInteger(start) || (chaosMs !== undefined && !(chaosMs > 0))) {
  console.error('usage: npm run sim -- --control-plane --seeds N [--seed S] [--chaos MS] [--verbose]');
  process.exit(2);
}

const t0 = performance.now();
let failed = 0;
let steps = 0;
let simMs = 0;
const totals: Record<string, number> = {};
for (let s = start; s < start + seeds; s++) {
  const r = await runControlPlaneSeed({ seed: s, chaosMs });
  steps += r.steps;
  simMs += r.simMs;
  for (const [k, v] of Object.entries(r.tally)) totals[k] = (totals[k] ?? 0) + v;
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
  `${seeds - failed}/${seeds} control-plane seeds passed (from ${start}) in ${secs.toFixed(1)} s; ` +
    `${(simMs / 1000).toFixed(0)} s simulated, ${steps} steps; ${Object.entries(totals).map(([k, v]) => `${v} ${k}`).join(', ')}`,
);
process.exit(failed ? 1 : 0);
