/** The chaos run's report as text: the seed and replay command, ops by kind and outcome, faults with times, anomalies. */
import { replayCommand, type ChaosReport } from './run.ts';

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export function opCounts(r: ChaosReport): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of r.ops) {
    const outcome = o.input.f === 'read' ? 'ok' : String(o.output);
    const k = `${o.input.f} ${outcome}`;
    counts[k] = (counts[k] ?? 0) + 1;
  }
  return counts;
}

export function formatReport(r: ChaosReport): string {
  const lines: string[] = [];
  const verdict = r.anomalies.length ? `FAIL (${r.anomalies.length} anomal${r.anomalies.length === 1 ? 'y' : 'ies'})` : 'ok';
  lines.push(`chaos seed ${r.seed}: ${verdict}`);
  lines.push(`  time: boot ${s(r.bootMs)}, faults for ${s(r.durationMs)}, recovery and checks ${r.recoveryMs !== undefined ? s(r.recoveryMs) : '-'}, total ${s(r.totalMs)}`);
  const counts = opCounts(r);
  lines.push(`  ops: ${r.ops.length} (${Object.entries(counts).sort().map(([k, n]) => `${k} ${n}`).join(', ')})`);
  const lin = r.linearizable;
  lines.push(`  linearizable: ${lin.verdict}${lin.versionBumps ? ' (the system raised versions by itself: reads bound them from below)' : ''}; ${lin.perKey.map((k) => `${k.key} ${k.verdict} (${k.ops} ops, ${k.steps} steps)`).join(', ')}`);
  lines.push(`  faults: ${r.faults.length}`);
  for (const f of r.faults) {
    const held = f.healedAt !== undefined ? `${s(f.at)}–${s(f.healedAt)}` : `${s(f.at)}–`;
    lines.push(`    ${held.padEnd(15)} ${f.kind.padEnd(17)} ${f.targets.join('  ')}${f.note ? `  [${f.note}]` : ''}`);
  }
  for (const k of r.skipped) lines.push(`  ${k}`);
  for (const n of r.notes) lines.push(`  note: ${n}`);
  for (const a of r.anomalies) lines.push(`  ANOMALY: ${a}`);
  if (r.logsDir) lines.push(`  the daemons' logs: ${r.logsDir}`);
  lines.push(`  replay: ${replayCommand(r.seed, r.durationMs)}`);
  return lines.join('\n');
}
