// npm run chaos -- [--minutes M] [--seed S] [--seeds N]
// Runs N seeds from S (a random S when left out), each a fresh cluster with faults for M minutes
// (default 1), and prints each run's report. A failure prints its seed and the command that replays it.
import { requireBinary, requireNetns } from '../harness/index.ts';
import { formatReport } from './report.ts';
import { replayCommand, runChaos } from './run.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const usage = 'usage: npm run chaos -- [--minutes M] [--seed S] [--seeds N]';
const minutes = Number(arg('minutes') ?? 1);
const seeds = Number(arg('seeds') ?? 1);
const start = arg('seed') !== undefined ? Number(arg('seed')) : Math.floor(Math.random() * 1e9);
if (!(minutes > 0) || !Number.isInteger(seeds) || seeds < 1 || !Number.isInteger(start)) {
  console.error(`${usage}\n  --minutes: a positive number (got ${arg('minutes')}); --seeds: a positive integer (got ${arg('seeds')}); --seed: an integer (got ${arg('seed')})`);
  process.exit(2);
}
const why = requireNetns();
if (why) {
  console.error(`chaos: cannot run here: ${why}`);
  process.exit(2);
}
requireBinary();

let failed = 0;
for (let seed = start; seed < start + seeds; seed++) {
  const durationMs = Math.round(minutes * 60_000);
  try {
    const r = await runChaos({ seed, durationMs, log: (l) => console.log(l) });
    console.log(formatReport(r));
    if (r.anomalies.length) failed++;
  } catch (e) {
    failed++;
    console.error(`chaos seed ${seed}: the run itself failed: ${(e as Error).stack ?? e}\n  replay: ${replayCommand(seed, durationMs)}`);
  }
}
console.log(`${seeds - failed}/${seeds} seeds passed (from ${start})`);
process.exit(failed ? 1 : 0);
