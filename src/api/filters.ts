/**
 * Docker's `filters` query parameter: JSON `{"service":["web"],"desired-state":["running"]}`, or the
 * older `{"service":{"web":true}}`. Unknown keys are refused, as Docker does.
 */
import { InvalidArgumentError } from '../lib/errors.ts';
import type { Labels } from '../types/index.ts';
import { filtersSchema, validate } from './schemas.ts';

export type Filters = Map<string, string[]>;

export function parseFilters(raw: string | undefined, allowed: readonly string[]): Filters {
  const out: Filters = new Map();
  if (raw === undefined || raw === '') return out;
  if (raw.length > 64 * 1024) throw new InvalidArgumentError('filters: too long');
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    throw new InvalidArgumentError(`filters: malformed JSON: ${(e as Error).message}`);
  }
  const parsed = validate(filtersSchema, json, 'filters');
  for (const [key, v] of Object.entries(parsed)) {
    if (!allowed.includes(key)) throw new InvalidArgumentError(`filters: invalid filter "${key}" (valid: ${allowed.join(', ')})`);
    const values = Array.isArray(v) ? v : Object.keys(v).filter((k) => v[k]);
    if (values.length) out.set(key, values);
  }
  return out;
}

/** `label=k` matches objects having label k; `label=k=v` those where it equals v. */
export function matchLabels(wanted: string[] | undefined, labels: Labels | undefined): boolean {
  if (!wanted) return true;
  return wanted.every((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) return labels !== undefined && w in labels;
    return labels?.[w.slice(0, eq)] === w.slice(eq + 1);
  });
}

/** Any of `wanted` matches (Docker ORs the values of one key, ANDs the keys). */
export function matchAny(wanted: string[] | undefined, test: (w: string) => boolean): boolean {
  return !wanted || wanted.some(test);
}
