/** `shoal cluster init|inspect`. */
import { type Command, FORMAT_OPTION, type Group } from './command.ts';
import { json } from './format.ts';

const init: Command = {
  name: 'init',
  summary: 'Make this host a cluster of its own (its first manager)',
  usage: '[OPTIONS]',
  options: [
    { long: 'listen-addr', kind: 'string', value: 'ADDR', help: 'address to listen on for other nodes' },
    { long: 'advertise-addr', kind: 'string', value: 'ADDR', help: 'address other nodes reach this one at' },
  ],
  maxArgs: 0,
  async run(ctx) {
    const nodeId = await ctx.client().initCluster({ ListenAddr: ctx.args.str('listen-addr'), AdvertiseAddr: ctx.args.str('advertise-addr') });
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

export const clusterGroup: Group = { name: 'cluster', summary: 'Manage the cluster', commands: [init, inspect] };
