/** `shoal network create|ls|inspect|rm`: overlay networks. */
import { UsageError } from './args.ts';
import { ApiError } from './client.ts';
import { type Command, FORMAT_OPTION, type Group } from './command.ts';
import { json, shortId, table } from './format.ts';
import { filtersOf } from './service.ts';
import { parseKeyValue } from './units.ts';

/** A network as `GET /networks` answers (Docker's NetworkResource). */
export interface NetworkResource {
  Id: string;
  Name: string;
  Driver: string;
  Scope: string;
  IPAM: { Config: { Subnet: string; Gateway?: string }[] };
  Labels: Record<string, string>;
  Options: Record<string, string>;
}

export function networkTable(networks: readonly NetworkResource[]): string {
  return table(
    ['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE', 'SUBNET'],
    networks.map((n) => [shortId(n.Id), n.Name, n.Driver, n.Scope, n.IPAM.Config.map((c) => c.Subnet).join(', ') || '(allocating)']),
  );
}

const create: Command = {
  name: 'create',
  summary: 'Create an overlay network',
  usage: '[OPTIONS] NETWORK',
  options: [
    { long: 'driver', short: 'd', kind: 'string', value: 'DRIVER', help: 'network driver (only overlay; the default)' },
    { long: 'subnet', kind: 'string', value: 'CIDR', help: 'subnet, e.g. 10.0.9.0/24 (default: a free /24 from 10.0.0.0/8)' },
    { long: 'gateway', kind: 'string', value: 'IP', help: 'gateway address in the subnet (default: its first address)' },
    { long: 'label', kind: 'list', value: 'KEY=VALUE', help: 'network label (repeatable)' },
    { long: 'attachable', kind: 'bool', help: 'let standalone tasks attach (recorded; not used yet)' },
    { long: 'internal', kind: 'bool', help: 'no access to the outside (recorded; not used yet)' },
  ],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx) {
    const a = ctx.args;
    const subnet = a.str('subnet');
    const gateway = a.str('gateway');
    if (gateway && !subnet) throw new UsageError('--gateway needs --subnet');
    const body = {
      Name: a.positionals[0],
      Driver: a.str('driver') ?? 'overlay',
      Labels: Object.fromEntries(a.list('label').map((l) => parseKeyValue('label', l))),
      ...(subnet ? { IPAM: { Driver: 'default', Config: [{ Subnet: subnet, ...(gateway ? { Gateway: gateway } : {}) }] } } : {}),
      ...(a.bool('attachable') ? { Attachable: true } : {}),
      ...(a.bool('internal') ? { Internal: true } : {}),
    };
    const r = await ctx.client().json<{ Id: string }>('POST', '/networks/create', { body });
    ctx.io.out(`${r.Id}\n`);
  },
};

const ls: Command = {
  name: 'ls',
  aliases: ['list'],
  summary: 'List networks',
  usage: '[OPTIONS]',
  options: [
    { long: 'filter', short: 'f', kind: 'list', value: 'KEY=VALUE', help: 'filter: id, name, label, driver, scope' },
    { long: 'quiet', short: 'q', kind: 'bool', help: 'only IDs' },
    FORMAT_OPTION,
  ],
  maxArgs: 0,
  async run(ctx) {
    const f = filtersOf(ctx, 'filter');
    const networks = await ctx.client().json<NetworkResource[]>('GET', '/networks', { query: { filters: f && JSON.stringify(f) } });
    if (ctx.args.bool('quiet')) return ctx.io.out(networks.map((n) => `${n.Id}\n`).join(''));
    ctx.io.out(ctx.args.str('format') === 'json' ? json(networks) : networkTable(networks));
  },
};

const inspect: Command = {
  name: 'inspect',
  summary: 'Show networks in detail (JSON)',
  usage: '[OPTIONS] NETWORK [NETWORK…]',
  options: [FORMAT_OPTION],
  minArgs: 1,
  async run(ctx) {
    const c = ctx.client();
    const out: NetworkResource[] = [];
    for (const ref of ctx.args.positionals) out.push(await c.json<NetworkResource>('GET', `/networks/${encodeURIComponent(ref)}`));
    ctx.io.out(json(out));
  },
};

const rm: Command = {
  name: 'rm',
  aliases: ['remove'],
  summary: 'Remove networks (refused while services use them)',
  usage: 'NETWORK [NETWORK…]',
  options: [],
  minArgs: 1,
  async run(ctx) {
    const c = ctx.client();
    let failed = false;
    for (const ref of ctx.args.positionals) {
      try {
        await c.request('DELETE', `/networks/${encodeURIComponent(ref)}`);
        ctx.io.out(`${ref}\n`);
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        ctx.io.err(`Error: ${e.message}\n`);
        failed = true;
      }
    }
    return failed ? 1 : 0;
  },
};

export const networkGroup: Group = { name: 'network', summary: 'Manage overlay networks', commands: [create, ls, inspect, rm] };
