/** Checks of a `ProcessSpec` before a service is accepted; every message names the field. */
import { constants } from 'node:os';
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
  if (p.StopSignal !== undefined && (typeof p.StopSignal !== 'string' || !signalName(p.StopSignal))) {
    return `ProcessSpec.StopSignal: unknown signal ${JSON.stringify(p.StopSignal)}`;
  }
  if (p.StopGracePeriod !== undefined && !(typeof p.StopGracePeriod === 'number' && p.StopGracePeriod >= 0)) {
    return 'ProcessSpec.StopGracePeriod: must be a non-negative number of nanoseconds';
  }
  return null;
}
