/**
 * `--mode`, `--replicas` and `--max-concurrent` as docker reads them, jobs included: for a
 * `replicated-job`, `--replicas` is the number of completions (TotalCompletions, default 1) and
 * `--max-concurrent` how many run at once (default: as many as `--replicas`).
 */
import type { ServiceMode } from '../types/index.ts';
import { type OptionDef, type Parsed, UsageError } from './args.ts';
import { invalid, parseChoice, parseCount } from './units.ts';

export const SERVICE_MODES = ['replicated', 'global', 'replicated-job', 'global-job'] as const;
export type ServiceModeName = (typeof SERVICE_MODES)[number];

export const MAX_CONCURRENT_OPTION: OptionDef = { long: 'max-concurrent', kind: 'string', value: 'N', help: 'replicated-job: tasks run at once (default: --replicas)' };

const MAX_REPLICAS = 10_000;
const MAX_COMPLETIONS = 100_000;

function count(p: Parsed, flag: string, max: number, min = 0): number | undefined {
  const raw = p.str(flag);
  if (raw === undefined) return undefined;
  const n = parseCount(flag, raw, max);
  if (n < min) throw invalid(flag, raw, `expected at least ${min}`);
  return n;
}

/** `service create`: the mode from `--mode`, `--replicas` and `--max-concurrent`. */
export function modeFromFlags(p: Parsed): ServiceMode {
  const mode = parseChoice('mode', p.str('mode') ?? 'replicated', SERVICE_MODES);
  const replicas = count(p, 'replicas', mode === 'replicated-job' ? MAX_COMPLETIONS : MAX_REPLICAS);
  const maxConcurrent = count(p, 'max-concurrent', MAX_REPLICAS, 1);
  if ((mode === 'global' || mode === 'global-job') && replicas !== undefined) throw new UsageError(`--replicas cannot be used with --mode ${mode}`);
  if (mode !== 'replicated-job' && maxConcurrent !== undefined) throw new UsageError(`--max-concurrent only applies to --mode replicated-job (not ${mode})`);
  switch (mode) {
    case 'global':
      return { Global: {} };
    case 'global-job':
      return { GlobalJob: {} };
    case 'replicated-job': {
      const total = replicas ?? 1;
      return { ReplicatedJob: { TotalCompletions: total, MaxConcurrent: maxConcurrent ?? Math.max(1, Math.min(total, MAX_REPLICAS)) } };
    }
    default:
      return { Replicated: { Replicas: replicas ?? 1 } };
  }
}

/** `service update`: `--replicas` and `--max-concurrent` applied to the current mode. */
export function applyModeUpdate(current: ServiceMode | undefined, p: Parsed): ServiceMode | undefined {
  const rj = current?.ReplicatedJob;
  const replicas = count(p, 'replicas', rj ? MAX_COMPLETIONS : MAX_REPLICAS);
  const maxConcurrent = count(p, 'max-concurrent', MAX_REPLICAS, 1);
  if (maxConcurrent !== undefined && !rj) throw new UsageError('--max-concurrent only applies to a replicated-job service');
  if (replicas === undefined && maxConcurrent === undefined) return current;
  if (current?.Global || current?.GlobalJob) throw new UsageError(`--replicas cannot be used with a ${current.Global ? 'global' : 'global-job'} service`);
  if (rj) return { ReplicatedJob: { ...rj, ...(replicas !== undefined ? { TotalCompletions: replicas } : {}), ...(maxConcurrent !== undefined ? { MaxConcurrent: maxConcurrent } : {}) } };
  return { Replicated: { Replicas: replicas! } };
}
