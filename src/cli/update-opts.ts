/**
 * `--update-*` and `--rollback-*` (docker's flags) → `UpdateConfig` / `RollbackConfig`, for
 * `service create` and `service update` alike: each flag sets one field and leaves the others.
 */
import type { ServiceSpec, UpdateConfig } from '../types/index.ts';
import type { OptionDef, Parsed } from './args.ts';
import { invalid, parseChoice, parseCount, parseDuration } from './units.ts';

type Which = 'update' | 'rollback';

const options = (w: Which): OptionDef[] => [
  { long: `${w}-parallelism`, kind: 'string', value: 'N', help: `tasks ${w === 'update' ? 'updated' : 'rolled back'} at once (0: all; default 1)` },
  { long: `${w}-delay`, kind: 'string', value: 'DURATION', help: `wait between ${w} batches (default 0s)` },
  { long: `${w}-failure-action`, kind: 'string', value: w === 'update' ? 'pause|continue|rollback' : 'pause|continue', help: `what a failed ${w} does (default pause)` },
  { long: `${w}-monitor`, kind: 'string', value: 'DURATION', help: `how long after it starts a task's failure counts against the ${w} (default 5s)` },
  { long: `${w}-max-failure-ratio`, kind: 'string', value: 'RATIO', help: `failure ratio (0 to 1) tolerated during the ${w} (default 0)` },
  { long: `${w}-order`, kind: 'string', value: 'stop-first|start-first', help: `stop the old task before starting the new one, or after (default stop-first)` },
];

export const UPDATE_CONFIG_OPTIONS: OptionDef[] = [...options('update'), ...options('rollback')];

function ratio(flag: string, raw: string): number {
  const n = Number(raw.trim());
  if (raw.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw invalid(flag, raw, 'expected a number from 0 to 1, e.g. 0.2');
  return n;
}

function apply(p: Parsed, w: Which, base: UpdateConfig | undefined): UpdateConfig | undefined {
  const c: UpdateConfig = { ...base };
  const f = (name: string) => p.str(`${w}-${name}`);
  const set = <K extends keyof UpdateConfig>(k: K, name: string, parse: (flag: string, raw: string) => UpdateConfig[K]) => {
    const raw = f(name);
    if (raw !== undefined) c[k] = parse(`${w}-${name}`, raw);
  };
  set('Parallelism', 'parallelism', (fl, r) => parseCount(fl, r));
  set('Delay', 'delay', parseDuration);
  set('FailureAction', 'failure-action', (fl, r) => parseChoice(fl, r, w === 'update' ? (['pause', 'continue', 'rollback'] as const) : (['pause', 'continue'] as const)));
  set('Monitor', 'monitor', parseDuration);
  set('MaxFailureRatio', 'max-failure-ratio', ratio);
  set('Order', 'order', (fl, r) => parseChoice(fl, r, ['stop-first', 'start-first'] as const));
  return Object.keys(c).length ? c : undefined;
}

/** The flags given on `spec` (changed in place). */
export function applyUpdateConfigFlags(p: Parsed, spec: ServiceSpec): void {
  const u = apply(p, 'update', spec.UpdateConfig);
  if (u) spec.UpdateConfig = u;
  const r = apply(p, 'rollback', spec.RollbackConfig);
  if (r) spec.RollbackConfig = r;
}
