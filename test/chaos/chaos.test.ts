/**
 * The chaos suite's short run (issue 19): 5 managers and 3 workers as namespace hosts, ~75 s of
 * seeded faults under a read/CAS workload, then healed; the history must be linearizable, no
 * acknowledged write lost, the replicated service back at its replicas. SHOAL_CHAOS_SEED picks
 * another seed; a failure prints the report, the seed and the command that replays it
 * (docs/chaos.md). The long run: `npm run chaos -- --minutes 30 --seed S`.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { disposeAll, logsOnFailure, requireNetns } from '../harness/index.ts';
import { formatReport } from './report.ts';
import { replayCommand, runChaos } from './run.ts';

const unavailable = requireNetns(Bun.which('tc') ? null : 'needs tc (Debian package iproute2) for netem');
const seed = Number(process.env.SHOAL_CHAOS_SEED ?? 19);
const durationMs = 75_000;

describe.skipIf(unavailable !== null)(`chaos: 5 managers, 3 workers, seeded faults${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  afterEach(() => disposeAll());

  test(`seed ${seed}: linearizable, no acknowledged write lost, replicas restored`, logsOnFailure(async () => {
    console.log(`chaos: seed ${seed} (SHOAL_CHAOS_SEED=${seed}; replay: ${replayCommand(seed, durationMs)})`);
    const report = await runChaos({ seed, durationMs, log: (l) => console.log(l) });
    const text = formatReport(report);
    console.log(text);
    if (report.anomalies.length) throw new Error(`chaos seed ${seed} found ${report.anomalies.length} anomalies; replay: ${replayCommand(seed, durationMs)}\n${text}`);
    expect(report.linearizable.verdict).not.toBe('illegal');
    expect(report.ops.some((o) => o.input.f === 'cas' && o.output === 'ok')).toBe(true);
    expect(report.faults.length).toBeGreaterThanOrEqual(5);
  }), 290_000);
});
