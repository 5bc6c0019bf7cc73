/** `shoal cluster init|update|join|join-token|leave|inspect|backup|unlock|unlock-key|ca` (also `shoal swarm …`, Docker's name). */
import { AUTOLOCK_OPTION, autolockFromFlags, unlockCmd, unlockKeyCmd, unlockKeyText } from './autolock.ts';
import { backupCommand } from './backup.ts';
import { type Command, FORMAT_OPTION, type Group } from './command.ts';
import { UsageError } from './args.ts';
import { json } from './format.ts';
import { invalid, parseCount, parseDuration } from './units.ts';
import { caCommand } from './cluster-ca.ts';

const SPEC_OPTIONS: Command['options'] = [
  { long: 'managers', kind: 'string', value: 'N', help: 'managers to keep: 0 = automatic (3 once there are 3 hosts), 1, 3, 5 or 7, -1 = roles by hand only' },
  { long: 'manager-lost-grace', kind: 'string', value: 'DURATION', help: 'how long a manager is down before a worker replaces it (default 30s)' },
  { long: 'failure-domain-label', kind: 'string', value: 'KEY', help: 'node label naming a failure domain, for picking managers (default failure-domain)' },
  { long: 'cert-expiry', kind: 'string', value: 'DURATION', help: 'lifetime of node certificates issued from now on (default 2160h = 90 days, at least 1h)' },
  AUTOLOCK_OPTION,
];

/** The cluster spec fields the init and update flags set (Docker's ClusterSpec, plus Managers). */
function specFromFlags(ctx: Parameters<Command['run']>[0]): Record<string, unknown> {
  const spec: Record<string, unknown> = {};
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
  if (Object.keys(Managers).length) spec.Managers = Managers;
  const expiry = ctx.args.str('cert-expiry');
  if (expiry !== undefined) spec.CAConfig = { NodeCertExpiry: parseDuration('cert-expiry', expiry) };
  const encryption = autolockFromFlags(ctx);
  if (encryption) spec.EncryptionConfig = encryption;
  return spec;
}

const init: Command = {
  name: 'init',
  summary: 'Make this host a cluster of its own (its first manager)',
  usage: '[OPTIONS]',
  options: [
    { long: 'listen-addr', kind: 'string', value: 'ADDR', help: 'address to listen on for other nodes' },
    { long: 'advertise-addr', kind: 'string', value: 'ADDR', help: 'address other nodes reach this one at' },
    ...SPEC_OPTIONS,
  ],
  maxArgs: 0,
  async run(ctx) {
    const spec = specFromFlags(ctx);
    const nodeId = await ctx.client().initCluster({
      ListenAddr: ctx.args.str('listen-addr'),
      AdvertiseAddr: ctx.args.str('advertise-addr'),
      ...(Object.keys(spec).length ? { Spec: spec } : {}),
    });
    ctx.io.out(`Cluster initialized: this node (${nodeId}) is now a manager.\n`);
    await printUnlockKey(ctx, spec);
  },
};

const update: Command = {
  name: 'update',
  summary: 'Change the cluster\'s settings (the options given; the others are kept)',
  usage: '[OPTIONS]',
  options: [
    ...SPEC_OPTIONS,
    { long: 'task-history-limit', kind: 'string', value: 'N', help: 'finished tasks kept per slot (default 5; -1 keeps all)' },
    { long: 'dispatcher-heartbeat', kind: 'string', value: 'DURATION', help: 'how often workers send heartbeats (default 1s)' },
    { long: 'snapshot-interval', kind: 'string', value: 'N', help: 'raft log entries between snapshots (default 10000)' },
    { long: 'election-tick', kind: 'string', value: 'N', help: 'raft election timeout in ticks of 50 ms, randomized to N..2N (default 14: 0.7-1.4 s); longer lets a busy leader keep its leadership, and failover takes as long' },
    { long: 'heartbeat-tick', kind: 'string', value: 'N', help: 'raft heartbeat interval in ticks of 50 ms (default 2); election-tick must be more than twice it' },
  ],
  maxArgs: 0,
  async run(ctx) {
    const spec = specFromFlags(ctx);
    const history = ctx.args.str('task-history-limit');
    if (history !== undefined) {
      if (!/^-?\d+$/.test(history.trim())) throw invalid('task-history-limit', history, 'expected a whole number');
      spec.Orchestration = { TaskHistoryRetentionLimit: Number(history) };
    }
    const hb = ctx.args.str('dispatcher-heartbeat');
    if (hb !== undefined) spec.Dispatcher = { HeartbeatPeriod: parseDuration('dispatcher-heartbeat', hb) };
    const snap = ctx.args.str('snapshot-interval');
    if (snap !== undefined) spec.Raft = { SnapshotInterval: parseCount('snapshot-interval', snap, 1e9) };
    const election = ctx.args.str('election-tick');
    if (election !== undefined) spec.Raft = { ...(spec.Raft as object), ElectionTick: parseCount('election-tick', election, 1200) };
    const heartbeat = ctx.args.str('heartbeat-tick');
    if (heartbeat !== undefined) spec.Raft = { ...(spec.Raft as object), HeartbeatTick: parseCount('heartbeat-tick', heartbeat, 100) };
    if (!Object.keys(spec).length) throw new UsageError('nothing to update: give at least one option (see "shoal cluster update --help")');
    const c = ctx.client();
    const cluster = await c.cluster();
    await c.updateCluster(cluster.Version.Index, spec);
    ctx.io.out('Cluster updated.\n');
    await printUnlockKey(ctx, spec);
  },
};

/** After autolock was turned on, the key (as docker prints it): the one time it is shown unasked. */
async function printUnlockKey(ctx: Parameters<Command['run']>[0], spec: Record<string, unknown>): Promise<void> {
  if ((spec.EncryptionConfig as { AutoLockManagers?: boolean } | undefined)?.AutoLockManagers !== true) return;
  const { UnlockKey } = await ctx.client().json<{ UnlockKey: string }>('GET', '/swarm/unlockkey');
  if (UnlockKey) ctx.io.out('\n' + unlockKeyText(UnlockKey));
}

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
    if (!token) throw new UsageError('the join tokens are shown only to admins (the unix socket, or an admin client bundle); this client bundle is read-only');
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

export const clusterGroup: Group = { name: 'cluster', aliases: ['swarm'], summary: 'Manage the cluster', commands: [init, update, joinCmd, joinToken, leave, inspect, backupCommand, unlockCmd, unlockKeyCmd, caCommand] };
