/**
 * Values on the command line, as the docker CLI reads them: durations (`500ms`, `1m30s`), sizes
 * (`64M`, `1G`, `512k`), CPUs (`0.5`), ports (`8080:80/udp`, `published=8080,target=80`), `K=V`.
 * Each parser throws UsageError `invalid value "x" for --flag: …`.
 */
import { parseConstraint } from '../manager/scheduler/constraints.ts';
import type { PortConfig } from '../types/index.ts';
import { UsageError } from './args.ts';

export function invalid(flag: string, value: string, why: string): UsageError {
  return new UsageError(`invalid value "${value}" for --${flag}: ${why}`);
}

const DURATION_UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
const DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;

/** A Go-style duration in nanoseconds: `500ms`, `5s`, `1m30s`, `1.5h`; a bare `0` is zero. */
export function parseDuration(flag: string, raw: string): number {
  const s = raw.trim();
  if (s === '0') return 0;
  const why = 'expected a duration like 500ms, 5s or 1m30s';
  if (!s) throw invalid(flag, raw, why);
  let ns = 0;
  DURATION_PART.lastIndex = 0;
  let at = 0;
  while (at < s.length) {
    DURATION_PART.lastIndex = at;
    const m = DURATION_PART.exec(s);
    if (!m) throw invalid(flag, raw, why);
    ns += Number(m[1]) * DURATION_UNIT_NS[m[2]!]!;
    at = DURATION_PART.lastIndex;
  }
  if (!Number.isFinite(ns) || ns > 10 * 365 * 24 * 3600e9) throw invalid(flag, raw, 'too long');
  return Math.round(ns);
}

const SIZE_UNIT: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** Bytes, binary multiples as Docker: `64M` = 64 MiB; `512k`, `1G`, `1.5g`, `100b`, `64MiB`. */
export function parseSize(flag: string, raw: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?$/i.exec(raw.trim());
  if (!m) throw invalid(flag, raw, 'expected a size like 64M, 1G or 512k');
  const bytes = Math.floor(Number(m[1]) * SIZE_UNIT[m[2]!.toLowerCase()]!);
  if (!Number.isSafeInteger(bytes)) throw invalid(flag, raw, 'too large');
  return bytes;
}

/** CPUs as a decimal (`0.5`, `2`) → NanoCPUs. */
export function parseCpus(flag: string, raw: string): number {
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(raw.trim())) throw invalid(flag, raw, 'expected a number of CPUs like 0.5 or 2');
  const n = Math.round(Number(raw) * 1e9);
  if (n <= 0) throw invalid(flag, raw, 'expected more than 0 CPUs');
  return n;
}

export function parseCount(flag: string, raw: string, max = 1_000_000): number {
  if (!/^\d+$/.test(raw.trim())) throw invalid(flag, raw, 'expected a non-negative integer');
  const n = Number(raw);
  if (n > max) throw invalid(flag, raw, `expected at most ${max}`);
  return n;
}

export function parseChoice<T extends string>(flag: string, raw: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(raw)) throw invalid(flag, raw, `expected one of ${choices.join(', ')}`);
  return raw as T;
}

function port(flag: string, raw: string, v: string, what: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 65535) throw invalid(flag, raw, `${what} port "${v}" is not a number between 1 and 65535`);
  return Number(v);
}

/** `--publish`: `[PUBLISHED:]TARGET[/PROTOCOL]` or `published=P,target=T,protocol=udp,mode=host`. */
export function parsePublish(raw: string, flag = 'publish'): PortConfig {
  const pc: PortConfig = { Protocol: 'tcp', TargetPort: 0, PublishMode: 'ingress' };
  const choice = <T extends string>(v: string, choices: readonly T[], what: string): T => {
    if (!(choices as readonly string[]).includes(v)) throw invalid(flag, raw, `${what} "${v}" is not one of ${choices.join(', ')}`);
    return v as T;
  };
  if (raw.includes('=')) {
    for (const field of raw.split(',')) {
      const eq = field.indexOf('=');
      if (eq < 0) throw invalid(flag, raw, `expected key=value, got "${field}"`);
      const k = field.slice(0, eq).trim().toLowerCase();
      const v = field.slice(eq + 1).trim();
      if (k === 'target') pc.TargetPort = port(flag, raw, v, 'target');
      else if (k === 'published') pc.PublishedPort = port(flag, raw, v, 'published');
      else if (k === 'protocol') pc.Protocol = choice(v, ['tcp', 'udp'] as const, 'protocol');
      else if (k === 'mode') pc.PublishMode = choice(v, ['ingress', 'host'] as const, 'mode');
      else if (k === 'name') pc.Name = v;
      else throw invalid(flag, raw, `unknown field "${k}" (valid: published, target, protocol, mode, name)`);
    }
    if (!pc.TargetPort) throw invalid(flag, raw, 'missing target=PORT');
    return pc;
  }
  const m = /^(?:(\d+):)?(\d+)(?:\/(tcp|udp))?$/.exec(raw.trim());
  if (!m) throw invalid(flag, raw, 'expected PUBLISHED:TARGET[/PROTOCOL] or published=P,target=T');
  if (m[1] !== undefined) pc.PublishedPort = port(flag, raw, m[1], 'published');
  pc.TargetPort = port(flag, raw, m[2]!, 'target');
  if (m[3]) pc.Protocol = m[3] as 'tcp' | 'udp';
  return pc;
}

/** `K=V` (or `K` alone, meaning an empty value for labels). */
export function parseKeyValue(flag: string, raw: string, requireValue = false): [string, string] {
  const eq = raw.indexOf('=');
  const k = eq < 0 ? raw : raw.slice(0, eq);
  if (!k.trim()) throw invalid(flag, raw, 'expected KEY=VALUE');
  if (eq < 0 && requireValue) throw invalid(flag, raw, 'expected KEY=VALUE');
  return [k, eq < 0 ? '' : raw.slice(eq + 1)];
}

/** `--env K=V`, or `--env K` to pass this shell's value of K (dropped when K is unset), as Docker. */
export function parseEnv(flag: string, raw: string, env: Record<string, string | undefined> = process.env): string | null {
  const eq = raw.indexOf('=');
  if (eq === 0 || !raw) throw invalid(flag, raw, 'expected KEY=VALUE');
  if (eq > 0) return raw;
  const v = env[raw];
  return v === undefined ? null : `${raw}=${v}`;
}

export function checkConstraint(flag: string, raw: string): string {
  try {
    parseConstraint(raw);
  } catch (e) {
    throw invalid(flag, raw, (e as Error).message.replace(/^invalid constraint "[^"]*": /, ''));
  }
  return raw;
}

/** `service scale web=5 db=2` → [['web', 5], ['db', 2]]. */
export function parseScaleArgs(args: readonly string[]): [string, number][] {
  if (args.length === 0) throw new UsageError('"shoal service scale" requires at least 1 argument: SERVICE=REPLICAS');
  return args.map((a) => {
    const m = /^([^=]+)=(.*)$/.exec(a);
    if (!m) throw new UsageError(`invalid scale specifier "${a}": expected SERVICE=REPLICAS`);
    if (!/^\d+$/.test(m[2]!)) throw new UsageError(`invalid replicas value "${m[2]}" for ${m[1]}: expected a non-negative integer`);
    return [m[1]!, Number(m[2])];
  });
}

/** `--since 1m` (relative) or an RFC 3339 time / unix seconds → what the API takes (unix seconds). */
export function parseSince(raw: string, now = Date.now()): string {
  if (/^\d+(\.\d+)?$/.test(raw)) return raw;
  const t = Date.parse(raw);
  if (!Number.isNaN(t) && /\d{4}-\d{2}-\d{2}/.test(raw)) return (t / 1000).toFixed(3);
  const ns = parseDuration('since', raw);
  return ((now - ns / 1e6) / 1000).toFixed(3);
}

/** Split `--args "a 'b c' d"` like a shell would (quotes and backslashes, no expansion). */
export function splitWords(flag: string, raw: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!;
    if (quote) {
      if (ch === quote) quote = null;
      else if (ch === '\\' && quote === '"' && i + 1 < raw.length) cur += raw[++i];
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      has = true;
    } else if (ch === '\\' && i + 1 < raw.length) {
      cur += raw[++i];
      has = true;
    } else if (/\s/.test(ch)) {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else cur += ch;
  }
  if (quote) throw invalid(flag, raw, 'unterminated quote');
  if (has || cur) out.push(cur);
  return out;
}
