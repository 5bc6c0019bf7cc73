/** `shoal cluster init|join|join-token|inspect`. */
import { type Command, FORMAT_OPTION, type Group } from './command.ts';
import { UsageError } from './args.ts';
import { json } from './format.ts';
import { invalid, parseDuration } from './units.ts';

const init: Command = {
  name: 'init',
  summary: 'Make this host a cluster of its own (its first manager)',
  usage: '[OPTIONS]',
  options: [
    { long: 'listen-addr', kind: 'string', value: 'ADDR', help: 'address to listen on for other nodes' },
    { long: 'advertise-addr', kind: 'string', value: 'ADDR', help: 'address other nodes reach this one at' },
    { long: 'managers', kind: 'string', value: 'N', help: 'managers to keep: 0 = automatic (3 once there are 3 hosts), N odd ≤ 7, -1 = roles by hand only' },
    { long: 'manager-lost-grace', kind: 'string', value: 'DURATION', help: 'how long a manager is down before a worker replaces it (default 30s)' },
    { long: 'failure-domain-label', kind: 'string', value: 'KEY', help: 'node label naming a failure domain, for picking managers (default failure-domain)' },
  ],
  maxArgs: 0,
  async run(ctx) {
    const Managers: Record<string, unknown> = {};
    const count = ctx.args.str('managers');
    if (count !== undefined) {
      if (!/^-?\d+$/.test(count.trim()) || Number(count) < -1) throw invalid('managers', count, 'expected 0 (automatic), -1 (off) or a number of managers');
      Managers.Desired = Number(count);
    }
    const grace = ctx.args.str('manager-lost-grace');
    if (grace !== undefined) Managers.LostGracePeriod = parseDuration('manager-lost-grace', grace);
    const label = ctx.args.str('failure-domain-label');
    if (label !== undefined) Managers.FailureDomainLabel = label;
    const nodeId = await ctx.client().initCluster({
      ListenAddr: ctx.args.str('listen-addr'),
      AdvertiseAddr: ctx.args.str('advertise-addr'),
      ...(Object.keys(Managers).length ? { Spec: { Managers } } : {}),
    });
    ctx.io.out(`Cluster initialized: this node (${nodeId}) is now a manager.\n`);
  },
};

const inspect: Command = {
  name: 'inspect',
  summary: 'Show the cluster (JSON)',
  usage: '[OPTIONS]',
  options: [FORMAT_OPTION],
  maxArgs: 0,
  async run(ctx) {
    ctx.io.out(json(await ctx.client().cluster()));
  },
};

const joinToken: Command = {
  name: 'join-token',
  summary: 'Show (or rotate) the token that joins a host as a worker or a manager',
  usage: '[OPTIONS] worker|manager',
  options: [
    { long: 'rotate', kind: 'bool', help: 'replace the token; the old one stops working at once' },
    { long: 'quiet', short: 'q', kind: 'bool', help: 'only the token' },
  ],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx) {
    const role = ctx.args.positionals[0];
    if (role !== 'worker' && role !== 'manager') throw new UsageError(`"${role}": expected worker or manager`);
    const c = ctx.client();
    if (ctx.args.bool('rotate')) await c.rotateJoinToken(role);
    const cluster = await c.cluster();
    const token = role === 'worker' ? cluster.JoinTokens.Worker : cluster.JoinTokens.Manager;
    if (ctx.args.bool('quiet')) return ctx.io.out(`${token}\n`);
    if (ctx.args.bool('rotate')) ctx.io.out(`Successfully rotated ${role} join token.\n\n`);
    const self = (await c.nodes()).find((n) => n.ManagerStatus?.Leader);
    const addr = self?.ManagerStatus?.Addr ?? 'MANAGER-IP:4242';
    ctx.io.out(`To add a ${role} to this cluster, run on the new host:\n\n    shoal daemon --join ${addr} --token ${token}\n\n`);
  },
};

const joinCmd: Command = {
  name: 'join',
  summary: 'Join the cluster of a manager (through this daemon\'s API)',
  usage: '[OPTIONS] MANAGER-IP:PORT',
  options: [
    { long: 'token', kind: 'string', value: 'TOKEN', help: 'join token (worker or manager) from "shoal cluster join-token"' },
    { long: 'listen-addr', kind: 'string', value: 'ADDR', help: 'address to listen on for other nodes' },
    { long: 'advertise-addr', kind: 'string', value: 'ADDR', help: 'address other nodes reach this one at' },
  ],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx) {
    const token = ctx.args.str('token');
    if (!token) throw new UsageError('--token is required: get one with "shoal cluster join-token worker|manager" on a manager');
    const nodeId = await ctx.client().joinCluster({ RemoteAddrs: [ctx.args.positionals[0]!], JoinToken: token, ListenAddr: ctx.args.str('listen-addr'), AdvertiseAddr: ctx.args.str('advertise-addr') });
    ctx.io.out(`This node (${nodeId}) joined the cluster.\n`);
  },
};

const leave: Command = {
  name: 'leave',
  summary: 'Make this host leave its cluster (its daemon stops; start it again with --init or --join)',
  usage: '[OPTIONS]',
  options: [{ long: 'force', short: 'f', kind: 'bool', help: 'leave even as a manager (demote it first to keep the quorum safe)' }],
  maxArgs: 0,
  async run(ctx) {
    await ctx.client().leaveCluster(ctx.args.bool('force'));
    ctx.io.out('Node left the cluster.\n');
  },
};

export const clusterGroup: Group = { name: 'cluster', summary: 'Manage the cluster', commands: [init, joinCmd, joinToken, leave, inspect] };
