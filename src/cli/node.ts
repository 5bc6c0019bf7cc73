/** `shoal node ls|inspect|update`. */
import type { Node } from '../types/index.ts';
import { UsageError } from './args.ts';
import { type Command, FORMAT_OPTION, type Group } from './command.ts';
import { json, nodeTable } from './format.ts';
import { filtersOf } from './service.ts';
import { parseChoice, parseKeyValue } from './units.ts';

const ls: Command = {
  name: 'ls',
  aliases: ['list'],
  summary: 'List the nodes of the cluster',
  usage: '[OPTIONS]',
  options: [
    { long: 'filter', short: 'f', kind: 'list', value: 'KEY=VALUE', help: 'filter: id, name, role, label, node.label' },
    { long: 'quiet', short: 'q', kind: 'bool', help: 'only IDs' },
    FORMAT_OPTION,
  ],
  maxArgs: 0,
  async run(ctx) {
    const c = ctx.client();
    const [nodes, info] = await Promise.all([c.nodes(filtersOf(ctx, 'filter')), c.info()]);
    if (ctx.args.bool('quiet')) return ctx.io.out(nodes.map((n) => `${n.ID}\n`).join(''));
    ctx.io.out(ctx.args.str('format') === 'json' ? json(nodes) : nodeTable(nodes, info?.Swarm?.NodeID ?? ''));
  },
};

const inspect: Command = {
  name: 'inspect',
  summary: 'Show nodes in detail (JSON); "self" is this host',
  usage: '[OPTIONS] NODE [NODE…]',
  options: [FORMAT_OPTION],
  minArgs: 1,
  async run(ctx) {
    const c = ctx.client();
    const out: Node[] = [];
    for (const ref of ctx.args.positionals) out.push(await c.node(ref === 'self' ? (await c.info()).Swarm.NodeID : ref));
    ctx.io.out(json(out));
  },
};

export function applyNodeUpdate(spec: Node['Spec'], args: import('./args.ts').Parsed): Node['Spec'] {
  const next: Node['Spec'] = { ...spec, Labels: { ...spec.Labels } };
  const avail = args.str('availability');
  if (avail !== undefined) next.Availability = parseChoice('availability', avail, ['active', 'pause', 'drain'] as const);
  const role = args.str('role');
  if (role !== undefined) next.Role = parseChoice('role', role, ['manager', 'worker'] as const);
  for (const k of args.list('label-rm')) {
    if (!(k in next.Labels!)) throw new UsageError(`key ${k} doesn't exist in node's labels`);
    delete next.Labels![k];
  }
  for (const l of args.list('label-add')) {
    const [k, v] = parseKeyValue('label-add', l);
    next.Labels![k] = v;
  }
  return next;
}

const update: Command = {
  name: 'update',
  summary: 'Update a node: availability, role, labels',
  usage: '[OPTIONS] NODE',
  options: [
    { long: 'availability', kind: 'string', value: 'active|pause|drain', help: 'whether the node takes tasks' },
    { long: 'role', kind: 'string', value: 'manager|worker', help: 'role of the node' },
    { long: 'label-add', kind: 'list', value: 'KEY=VALUE', help: 'add or change a node label (repeatable)' },
    { long: 'label-rm', kind: 'list', value: 'KEY', help: 'remove a node label (repeatable)' },
  ],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx) {
    const c = ctx.client();
    const ref = ctx.args.positionals[0]!;
    const node = await c.node(ref === 'self' ? (await c.info()).Swarm.NodeID : ref);
    await c.updateNode(node.ID, node.Version.Index, applyNodeUpdate(node.Spec, ctx.args));
    ctx.io.out(`${ref}\n`);
  },
};

function roleCommand(name: 'promote' | 'demote', role: 'manager' | 'worker'): Command {
  return {
    name,
    summary: name === 'promote' ? 'Make nodes managers' : 'Make managers workers (leadership is handed over first)',
    usage: 'NODE [NODE…]',
    options: [],
    minArgs: 1,
    async run(ctx) {
      const c = ctx.client();
      for (const ref of ctx.args.positionals) {
        const node = await c.node(ref);
        if (node.Spec.Role === role) {
          ctx.io.out(`Node ${ref} is already a ${role}.\n`);
          continue;
        }
        await c.updateNode(node.ID, node.Version.Index, { ...node.Spec, Role: role });
        ctx.io.out(`Node ${ref} ${name}d to ${role} in the cluster.\n`);
      }
    },
  };
}

const rm: Command = {
  name: 'rm',
  aliases: ['remove'],
  summary: 'Remove nodes from the cluster (they are refused from then on)',
  usage: '[OPTIONS] NODE [NODE…]',
  options: [{ long: 'force', short: 'f', kind: 'bool', help: 'remove a node that is still up' }],
  minArgs: 1,
  async run(ctx) {
    const c = ctx.client();
    for (const ref of ctx.args.positionals) {
      await c.removeNode(ref, ctx.args.bool('force'));
      ctx.io.out(`${ref}\n`);
    }
  },
};

export const nodeGroup: Group = {
  name: 'node', summary: 'Manage the nodes of the cluster',
  commands: [ls, inspect, update, roleCommand('promote', 'manager'), roleCommand('demote', 'worker'), rm],
};
