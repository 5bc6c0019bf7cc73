/**
 * A strict reader of Prometheus' text exposition format (0.0.4), for tests of `/metrics`.
 *
 * Written here rather than taken from npm: the one parser there, parse-prometheus-text-format (last
 * released years ago), drops the labels, `_sum` and `_count` of a histogram whose `le` label is not
 * the last one (prom-client writes it first) and keeps values that are not numbers. This one refuses
 * what Prometheus would: a malformed line, a sample of no declared family, a value that is not a
 * number, a series given twice, histogram buckets that are not cumulative or disagree with `_count`.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  /** The sample's own name (`x_bucket`, `x_count` for a histogram `x`). */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: MetricType;
  help: string;
  samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})?[ \\t]+(\\S+)(?:[ \\t]+(-?\\d+))?$`);
const LABEL = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/;
/** What Prometheus reads (Go's ParseFloat): Inf and NaN in any case (prom-client writes "Nan"). */
const VALUE = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?inf(?:inity)?|nan)$/i;
const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Partial<Record<MetricType, string[]>> = { histogram: ['_bucket', '_sum', '_count'], summary: ['_sum', '_count'] };

function parseValue(v: string, line: number): number {
  if (!VALUE.test(v)) throw new Error(`line ${line}: value "${v}" is not a number`);
  const lower = v.toLowerCase();
  if (lower === 'nan') return NaN;
  if (lower.includes('inf')) return lower.startsWith('-') ? -Infinity : Infinity;
  return Number(v);
}

function parseLabels(text: string, line: number): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = text;
  while (rest.trim() !== '') {
    const m = LABEL.exec(rest);
    if (!m) throw new Error(`line ${line}: malformed labels {${text}}`);
    if (m[1]! in labels) throw new Error(`line ${line}: label ${m[1]} given twice`);
    labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    rest = rest.slice(m[0].length);
  }
  return labels;
}

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  const familyOf = (sample: string): Family | undefined => {
    const exact = families.get(sample);
    if (exact && !SUFFIXES[exact.type]) return exact;
    for (const f of families.values()) if (SUFFIXES[f.type]?.some((s) => sample === f.name + s)) return f;
    return exact?.type === 'summary' ? exact : undefined; // a summary's quantiles carry its own name
  };
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    const l = raw.trim();
    if (l === '') return;
    if (l.startsWith('#')) {
      const m = new RegExp(`^#\\s+(HELP|TYPE)\\s+(${NAME})(?:\\s+(.*))?$`).exec(l);
      if (!m) return; // a plain comment
      const [, kind, name, rest = ''] = m;
      let f = families.get(name!);
      if (!f) families.set(name!, (f = { name: name!, type: 'untyped', help: '', samples: [] }));
      if (kind === 'HELP') f.help = rest;
      else {
        if (!TYPES.has(rest as MetricType)) throw new Error(`line ${line}: unknown type "${rest}" for ${name}`);
        if (f.samples.length) throw new Error(`line ${line}: # TYPE ${name} after its samples`);
        f.type = rest as MetricType;
      }
      return;
    }
    const m = SAMPLE.exec(l);
    if (!m) throw new Error(`line ${line}: malformed sample: ${l}`);
    const [, name, labelText = '', value] = m;
    const f = familyOf(name!);
    if (!f) throw new Error(`line ${line}: sample ${name} belongs to no family declared with # TYPE`);
    const labels = parseLabels(labelText, line);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)))}`;
    if (seen.has(key)) throw new Error(`line ${line}: series ${name}{${labelText}} given twice`);
    seen.add(key);
    f.samples.push({ name: name!, labels, value: parseValue(value!, line) });
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

/** Buckets by the labels other than `le`: cumulative, ending in +Inf, which equals `_count`. */
function checkHistogram(f: Family): void {
  const series = new Map<string, { buckets: [number, number][]; count?: number }>();
  const keyOf = (labels: Record<string, string>) => JSON.stringify(Object.entries(labels).filter(([k]) => k !== 'le').sort(([a], [b]) => (a < b ? -1 : 1)));
  const get = (k: string) => series.get(k) ?? series.set(k, { buckets: [] }).get(k)!;
  for (const s of f.samples) {
    if (s.name === `${f.name}_bucket`) {
      if (s.labels.le === undefined) throw new Error(`${f.name}_bucket without le`);
      get(keyOf(s.labels)).buckets.push([parseValue(s.labels.le, 0), s.value]);
    } else if (s.name === `${f.name}_count`) get(keyOf(s.labels)).count = s.value;
  }
  for (const [k, { buckets, count }] of series) {
    buckets.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < buckets.length; i++) if (buckets[i]![1] < buckets[i - 1]![1]) throw new Error(`${f.name}${k}: buckets not cumulative`);
    const inf = buckets.at(-1);
    if (!inf || inf[0] !== Infinity) throw new Error(`${f.name}${k}: no +Inf bucket`);
    if (count !== inf[1]) throw new Error(`${f.name}${k}: _count ${count} differs from the +Inf bucket ${inf[1]}`);
  }
}

export class Scrape {
  readonly families: Map<string, Family>;

  constructor(text: string) {
    this.families = parsePrometheusText(text);
  }

  family(name: string): Family {
    const f = this.families.get(name);
    if (!f) throw new Error(`no metric family ${name} in the scrape (have: ${[...this.families.keys()].join(', ')})`);
    return f;
  }

  /** The samples named `name` (a family's name, or `<histogram>_count` …) whose labels include `labels`. */
  samples(name: string, labels: Record<string, string> = {}): Sample[] {
    const f = this.families.get(name) ?? [...this.families.values()].find((x) => x.samples.some((s) => s.name === name));
    if (!f) throw new Error(`no metric ${name} in the scrape (have: ${[...this.families.keys()].join(', ')})`);
    return f.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  }

  /** The value of the one sample with these labels (undefined when none). */
  value(name: string, labels: Record<string, string> = {}): number | undefined {
    const s = this.samples(name, labels);
    if (s.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${s.length} samples, expected one`);
    return s[0]?.value;
  }

  /** A histogram's observation count over the series with these labels. */
  count(name: string, labels: Record<string, string> = {}): number {
    this.family(name);
    return this.samples(`${name}_count`, labels).reduce((n, s) => n + s.value, 0);
  }
}
