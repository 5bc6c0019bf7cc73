/** Checks of a `ProcessSpec` before a service is accepted; every message names the field. */
import { constants } from 'node:os';
import { validateHostHealthcheck } from '../../src/executor/health.ts';
import type { TaskSpec } from '../../src/types/index.ts';

/** "SIGTERM", "TERM" or "15" → "SIGTERM"; undefined when unknown. */
export function signalName(s: string): NodeJS.Signals | undefined {
  const table = constants.signals as Record<string, number>;
  if (/^\d+$/.test(s)) return Object.keys(table).find((k) => table[k] === Number(s)) as NodeJS.Signals | undefined;
  const name = s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`;
  return name in table ? (name as NodeJS.Signals) : undefined;
}

export function validateProcessSpec(spec: TaskSpec): string | null {
  const p = spec.ProcessSpec;
  if (!p || typeof p !== 'object') return 'TaskTemplate.ProcessSpec: required for runtime "process"';
  if (!Array.isArray(p.Command) || p.Command.length === 0 || !p.Command[0]) {
    return 'ProcessSpec.Command: must be a non-empty list: the program, then its arguments';
  }
  const bad = p.Command.findIndex((a) => typeof a !== 'string' || a.includes('\0'));
  if (bad >= 0) return `ProcessSpec.Command[${bad}]: must be a string without NUL bytes`;
  if (p.Env !== undefined) {
    if (!Array.isArray(p.Env)) return 'ProcessSpec.Env: must be a list of KEY=VALUE strings';
    const i = p.Env.findIndex((e) => typeof e !== 'string' || !/^[^=\0]+=/.test(e) || e.includes('\0'));
    if (i >= 0) return `ProcessSpec.Env[${i}]: ${JSON.stringify(p.Env[i])} is not KEY=VALUE`;
  }
  if (p.Dir !== undefined && (typeof p.Dir !== 'string' || !p.Dir.startsWith('/'))) {
    return `ProcessSpec.Dir: ${JSON.stringify(p.Dir)} must be an absolute path`;
  }
  if (p.User !== undefined && (typeof p.User !== 'string' || !/^[^:\s]+(:[^:\s]+)?$/.test(p.User))) {
    return `ProcessSpec.User: ${JSON.stringify(p.User)} must be a name, a uid, or user:group`;
  }
  if (p.Groups !== undefined) {
    if (!Array.isArray(p.Groups)) return 'ProcessSpec.Groups: must be a list of group names or gids';
    const i = p.Groups.findIndex((g) => typeof g !== 'string' || !/^[^:\s,]+$/.test(g));
    if (i >= 0) return `ProcessSpec.Groups[${i}]: ${JSON.stringify(p.Groups[i])} is not a group name or gid`;
  }
  if (p.Isolation !== undefined) {
    if (!p.Isolation || typeof p.Isolation !== 'object') return 'ProcessSpec.Isolation: must be an object { Pid, Mount, Network }';
    for (const [k, v] of Object.entries(p.Isolation)) {
      if (!['Pid', 'Mount', 'Network'].includes(k)) return `ProcessSpec.Isolation.${k}: unknown (use Pid, Mount, Network)`;
      if (typeof v !== 'boolean') return `ProcessSpec.Isolation.${k}: must be true or false`;
    }
  }
  const limits = spec.Resources?.Limits;
  for (const k of ['MemoryBytes', 'NanoCPUs'] as const) {
    const v = limits?.[k];
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0)) return `Resources.Limits.${k}: must be a non-negative integer`;
  }
  if (limits?.MemoryBytes && limits.MemoryBytes < 1 << 20) return 'Resources.Limits.MemoryBytes: at least 1 MiB for a process';
  if (limits?.NanoCPUs && limits.NanoCPUs < 1e7) return 'Resources.Limits.NanoCPUs: at least 0.01 CPU (10000000)';
  if (p.StopSignal !== undefined && (typeof p.StopSignal !== 'string' || !signalName(p.StopSignal))) {
    return `ProcessSpec.StopSignal: unknown signal ${JSON.stringify(p.StopSignal)}`;
  }
  if (p.StopGracePeriod !== undefined && !(typeof p.StopGracePeriod === 'number' && p.StopGracePeriod >= 0)) {
    return 'ProcessSpec.StopGracePeriod: must be a non-negative number of nanoseconds';
  }
  if (p.Healthcheck) return validateHostHealthcheck(p.Healthcheck, 'ProcessSpec.Healthcheck');
  return null;
}
