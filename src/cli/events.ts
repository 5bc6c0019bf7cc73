/** `shoal events`: the cluster's events as they happen (or between --since and --until), as `docker events`. */
import { type Command, FORMAT_OPTION } from './command.ts';
import { filtersOf } from './service.ts';
import { parseSince } from './units.ts';

interface EventMessage {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes?: Record<string, string> };
  time: number;
  timeNano: number;
  error?: string;
}

/** Docker's text: `<RFC 3339 time with nanoseconds> <type> <action> <id> (k=v, …)`. */
export function eventText(e: EventMessage, timeNano: string): string {
  const ns = timeNano.padStart(10, '0');
  const iso = new Date(Number(ns.slice(0, -9)) * 1000).toISOString().replace(/\.\d{3}Z$/, `.${ns.slice(-9)}Z`);
  const attrs = Object.entries(e.Actor.Attributes ?? {}).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`);
  return `${iso} ${e.Type} ${e.Action} ${e.Actor.ID}${attrs.length ? ` (${attrs.join(', ')})` : ''}\n`;
}

/** One line of the stream for the terminal; `timeNano` is read from the text, since a Number cannot hold it exactly. */
export function renderEventLine(line: string, format: string | undefined): string {
  const e = JSON.parse(line) as EventMessage;
  if (e.error) throw new Error(e.error);
  if (format === 'json') return `${line}\n`;
  const nano = /"timeNano":(\d+)/.exec(line)?.[1] ?? `${e.time}000000000`;
  return eventText(e, nano);
}

export const eventsCommand: Command = {
  name: 'events',
  summary: 'Show the cluster\'s events: services, nodes, tasks, networks, secrets, configs',
  usage: '[OPTIONS]',
  options: [
    { long: 'since', kind: 'string', value: 'WHEN', help: 'show events since a time (RFC 3339, unix seconds) or a duration ago (e.g. 10m); only the newest 10 000 are kept' },
    { long: 'until', kind: 'string', value: 'WHEN', help: 'stop at a time or a duration ago; without it the stream stays open' },
    { long: 'filter', short: 'f', kind: 'list', value: 'KEY=VALUE', help: 'filter: type (service, node, task, network, secret, config), event, service, node, label, scope' },
    FORMAT_OPTION,
  ],
  maxArgs: 0,
  async run(ctx) {
    const now = Date.now();
    const since = ctx.args.str('since');
    const until = ctx.args.str('until');
    const filters = filtersOf(ctx, 'filter');
    const query = {
      since: since === undefined ? undefined : parseSince(since, now),
      until: until === undefined ? undefined : parseSince(until, now),
      filters: filters ? JSON.stringify(filters) : undefined,
    };
    const res = await ctx.client().request('GET', '/events', { query, signal: ctx.signal, stream: true });
    const format = ctx.args.str('format');
    const dec = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body ?? []) {
      buf += dec.decode(chunk as Uint8Array, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) ctx.io.out(renderEventLine(line, format));
      }
    }
    if (buf.trim()) ctx.io.out(renderEventLine(buf.trim(), format));
  },
};
