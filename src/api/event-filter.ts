/**
 * The query of `GET /events`: `since` / `until` and Docker's event filters, with Docker's matching
 * (values of one key ORed, keys ANDed; names and IDs match exactly or by prefix).
 */
import { InvalidArgumentError } from '../lib/errors.ts';
import { EVENT_TYPES, type EventType, type SwarmEvent } from './event-derive.ts';
import { type Filters, matchLabels, parseFilters } from './filters.ts';

const SWARM_FILTERS = ['type', 'event', 'scope', 'service', 'node', 'network', 'secret', 'config', 'label'] as const;
/** Docker's filters for engine-local objects: there are no such events in shoal, so they are refused, not silently empty. */
const LOCAL_FILTERS = ['container', 'image', 'volume', 'plugin', 'daemon'] as const;

/**
 * A time as Docker sends it: unix seconds with up to nine decimals (`1700000000.000000001`), or an
 * RFC 3339 time; in nanoseconds. The docker CLI turns durations (`10m`) into such seconds itself.
 */
export function parseEventTime(name: 'since' | 'until', raw: string): bigint {
  const m = /^(\d+)(?:\.(\d{1,9}))?$/.exec(raw);
  if (m) return BigInt(m[1]!) * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
  const ms = /^\d{4}-\d{2}-\d{2}/.test(raw) ? Date.parse(raw) : NaN;
  if (Number.isNaN(ms)) throw new InvalidArgumentError(`invalid query parameter ${name}="${raw}": expected unix seconds (e.g. 1700000000.5) or an RFC 3339 time`);
  return BigInt(ms) * 1_000_000n;
}

export interface EventQuery {
  sinceNano?: bigint;
  untilNano?: bigint;
  match(e: SwarmEvent): boolean;
}

export function eventQuery(q: { since?: string; until?: string; filters?: string }): EventQuery {
  const sinceNano = q.since ? parseEventTime('since', q.since) : undefined;
  const untilNano = q.until ? parseEventTime('until', q.until) : undefined;
  if (sinceNano !== undefined && untilNano !== undefined && untilNano < sinceNano) throw new InvalidArgumentError(`invalid query: until (${q.until}) is before since (${q.since})`);
  const f = parseFilters(q.filters, [...SWARM_FILTERS, ...LOCAL_FILTERS]);
  for (const key of LOCAL_FILTERS) {
    if (f.has(key)) throw new InvalidArgumentError(`filters: "${key}" is not supported: shoal has only swarm events (filter by ${SWARM_FILTERS.join(', ')})`);
  }
  for (const t of f.get('type') ?? []) {
    if (!EVENT_TYPES.includes(t as EventType)) throw new InvalidArgumentError(`filters: invalid type "${t}" (shoal's event types: ${EVENT_TYPES.join(', ')})`);
  }
  for (const s of f.get('scope') ?? []) {
    if (s !== 'swarm' && s !== 'local') throw new InvalidArgumentError(`filters: invalid scope "${s}" (swarm or local)`);
  }
  return { sinceNano, untilNano, match: (e) => matchEvent(f, e) };
}

const fuzzy = (wanted: string[], ...values: (string | undefined)[]) => wanted.some((w) => values.some((v) => v !== undefined && v !== '' && v.startsWith(w)));

/** The object an event is about, by the filter key that names it; a task also by its service and node. */
function matchObject(f: Filters, key: 'service' | 'node' | 'network' | 'secret' | 'config', e: SwarmEvent): boolean {
  const wanted = f.get(key);
  if (!wanted) return true;
  const a = e.Actor.Attributes;
  if (e.Type === key) return fuzzy(wanted, e.Actor.ID, a.name);
  if (e.Type === 'task' && key === 'service') return fuzzy(wanted, a['service.id'], a.service);
  if (e.Type === 'task' && key === 'node') return fuzzy(wanted, a.node);
  return false;
}

export function matchEvent(f: Filters, e: SwarmEvent): boolean {
  const is = (key: string, v: string) => !f.has(key) || f.get(key)!.includes(v);
  return (
    is('type', e.Type) &&
    is('event', e.Action) &&
    is('scope', e.scope) &&
    matchObject(f, 'service', e) &&
    matchObject(f, 'node', e) &&
    matchObject(f, 'network', e) &&
    matchObject(f, 'secret', e) &&
    matchObject(f, 'config', e) &&
    matchLabels(f.get('label'), e.labels)
  );
}
