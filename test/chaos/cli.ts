// npm run chaos -- [--minutes M] [--seed S] [--seeds N]
// Runs N seeds from S (a random S when left out), each a fresh cluster with faults for M minutes
// (default 1), and prints each run's report. A failure prints its seed and the command that replays it.
import { parseArgs } from 'node:util';
import { requireBinary, requireNetns } from '../harness/index.ts';
import { formatReport } from './report.ts';
import { replayCommand, runChaos } from './run.ts';

const usage = 'usage: npm run chaos -- [--minutes M] [--seed S] [--seeds N]';
let values: { minutes?: string; seed?: string; seeds?: string; help?: boolean };
try {
  // strict: an unknown flag (or --help) must not start a run of several minutes as root.
  ({ values } = parseArgs({ options: { minutes: { type: 'string' }, seed: { type: 'string' }, seeds: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }));
} catch (e) {
  console.error(`chaos: ${(e as Error).message}\n${usage}`);
  process.exit(2);
}
if (values.help) {
  console.log(`${usage}\n  N seeds from S (random when left out), each a fresh 5-manager, 3-worker cluster in network namespaces\n  with seeded faults for M minutes (default 1); needs root. docs/chaos.md`);
  process.exit(0);
}
const minutes = Number(values.minutes ?? 1);
const seeds = Number(values.seeds ?? 1);
const start = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 1e9);
if (!(minutes > 0) || !Number.isInteger(seeds) || seeds < 1 || !Number.isInteger(start)) {
  console.error(`${usage}\n  --minutes: a positive number (got ${values.minutes}); --seeds: a positive integer (got ${values.seeds}); --seed: an integer (got ${values.seed})`);
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
