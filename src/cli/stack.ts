/**
 * `shoal stack deploy|ls|ps|services|rm`: compose files converted here, on the client, as the
 * docker CLI does, so the daemon only ever sees Docker's API (objects carry the label
 * `com.docker.stack.namespace`, names are `STACK_name`, and `docker stack …` sees the same stacks).
 */
import type { Node, Service } from '../types/index.ts';
import { UsageError } from './args.ts';
import { ApiError, type Client } from './client.ts';
import type { Command, Ctx, Group } from './command.ts';
import { FORMAT_OPTION } from './command.ts';
import { json, serviceTable, table, taskTable } from './format.ts';
import { checkNamespace, convertStack, type StackPlan } from '../stack/convert.ts';
import { type Current, diffStack } from '../stack/diff.ts';
import { ComposeError, loadCompose } from '../stack/load.ts';
import { NAMESPACE_LABEL } from '../stack/service.ts';

const byStack = (ns: string) => ({ label: [`${NAMESPACE_LABEL}=${ns}`] });
const q = (f: Record<string, string[]>) => ({ filters: JSON.stringify(f) });

function namespaceArg(ctx: Ctx): string {
  try {
    return checkNamespace(ctx.args.positionals[0]!);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

async function current(c: Client, ns: string): Promise<Current> {
  const f = byStack(ns);
  const [services, networks, secrets, configs] = await Promise.all([
    c.services(f),
    c.json<Current['networks']>('GET', '/networks', { query: q(f) }),
    c.json<Current['secrets']>('GET', '/secrets', { query: q(f) }),
    c.json<Current['configs']>('GET', '/configs', { query: q(f) }),
  ]);
  return { services, networks, secrets, configs };
}

/** External objects must exist: said before anything is created. */
async function checkExternal(c: Client, plan: StackPlan): Promise<void> {
  const missing: string[] = [];
  if (plan.external.networks.length) {
    const all = await c.json<{ Name: string; Id: string }[]>('GET', '/networks');
    for (const n of plan.external.networks) if (!all.some((x) => x.Name === n || x.Id === n)) missing.push(`network ${n}`);
  }
  for (const kind of ['secrets', 'configs'] as const) {
    if (!plan.external[kind].length) continue;
    const all = await c.json<{ ID: string; Spec: { Name: string } }[]>('GET', `/${kind}`);
    for (const n of plan.external[kind]) if (!all.some((x) => x.Spec.Name === n || x.ID === n)) missing.push(`${kind.slice(0, -1)} ${n}`);
  }
  if (missing.length) throw new UsageError(`external ${missing.join(', ')} not found: create ${missing.length > 1 ? 'them' : 'it'} first`);
}

const deploy: Command = {
  name: 'deploy',
  aliases: ['up'],
  summary: 'Deploy a stack from compose files, or apply the changes to one deployed',
  usage: '[OPTIONS] STACK',
  options: [
    { long: 'compose-file', short: 'c', kind: 'list', value: 'FILE', help: 'compose file (repeatable: later files merge over earlier ones; - for standard input)' },
    { long: 'prune', kind: 'bool', help: 'remove the stack\'s services that the files no longer name' },
    { long: 'quiet', short: 'q', kind: 'bool', help: 'print only warnings and errors' },
  ],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx) {
    const ns = namespaceArg(ctx);
    const files = ctx.args.list('compose-file');
    if (!files.length) throw new UsageError('"shoal stack deploy" needs a compose file: shoal stack deploy -c FILE STACK');
    const say = (s: string) => !ctx.args.bool('quiet') && ctx.io.out(s);
    let plan: StackPlan;
    try {
      const loaded = loadCompose(files, ctx.io.env);
      for (const v of loaded.unset) ctx.io.err(`Warning: variable ${v} is not set: an empty string is used\n`);
      plan = convertStack(loaded.tree, ns, {
        dir: loaded.dir,
        env: ctx.io.env,
        warn: (path, why) => ctx.io.err(`Warning: ${path}: ${why ?? 'not supported by shoal, ignored'}\n`),
      });
    } catch (e) {
      if (e instanceof ComposeError) throw new UsageError(e.message);
      throw e;
    }
    const c = ctx.client();
    await checkExternal(c, plan);
    let actions;
    try {
      actions = diffStack(plan, await current(c, ns), ctx.args.bool('prune'));
    } catch (e) {
      if (e instanceof ComposeError) throw new UsageError(e.message);
      throw e;
    }
    for (const a of actions) {
      switch (a.op) {
        case 'create-secret':
        case 'create-config': {
          const kind = a.op === 'create-secret' ? 'secret' : 'config';
          say(`Creating ${kind} ${a.object.Name}\n`);
          await c.json('POST', `/${kind}s/create`, { body: a.object });
          break;
        }
        case 'create-network':
          say(`Creating network ${a.network.Name}\n`);
          await c.json('POST', '/networks/create', { body: a.network });
          break;
        case 'create-service':
          say(`Creating service ${a.spec.Name}\n`);
          await c.createService(a.spec);
          break;
        case 'update-service':
          say(`Updating service ${a.spec.Name} (id: ${a.id})\n`);
          await c.updateService(a.id, a.version, a.spec);
          break;
        case 'remove-service':
          say(`Removing service ${a.name}\n`);
          await c.removeService(a.id);
          break;
      }
    }
    const untouched = plan.services.length - actions.filter((a) => a.op === 'create-service' || a.op === 'update-service').length;
    if (untouched > 0) say(`${untouched} service${untouched > 1 ? 's' : ''} unchanged\n`);
  },
};

const ls: Command = {
  name: 'ls',
  aliases: ['list'],
  summary: 'List stacks',
  usage: '[OPTIONS]',
  options: [FORMAT_OPTION],
  maxArgs: 0,
  async run(ctx) {
    const services = await ctx.client().services({ label: [NAMESPACE_LABEL] });
    const counts = new Map<string, number>();
    for (const s of services) {
      const ns = s.Spec.Labels?.[NAMESPACE_LABEL];
      if (ns !== undefined) counts.set(ns, (counts.get(ns) ?? 0) + 1);
    }
    const rows = [...counts].sort(([a], [b]) => a.localeCompare(b));
    if (ctx.args.str('format') === 'json') return ctx.io.out(json(rows.map(([Name, Services]) => ({ Name, Services }))));
    ctx.io.out(table(['NAME', 'SERVICES'], rows.map(([n, k]) => [n, String(k)])));
  },
};

async function stackServices(c: Client, ns: string, status = false): Promise<Service[]> {
  const services = await c.services(byStack(ns), status);
  if (!services.length) throw new UsageError(`nothing found in stack: ${ns}`);
  return services;
}

const services: Command = {
  name: 'services',
  summary: 'List the services of a stack',
  usage: '[OPTIONS] STACK',
  options: [{ long: 'quiet', short: 'q', kind: 'bool', help: 'only IDs' }, FORMAT_OPTION],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx) {
    const list = await stackServices(ctx.client(), namespaceArg(ctx), true);
    if (ctx.args.bool('quiet')) return ctx.io.out(list.map((s) => `${s.ID}\n`).join(''));
    ctx.io.out(ctx.args.str('format') === 'json' ? json(list) : serviceTable(list));
  },
};

const ps: Command = {
  name: 'ps',
  summary: 'List the tasks of a stack',
  usage: '[OPTIONS] STACK',
  options: [{ long: 'quiet', short: 'q', kind: 'bool', help: 'only IDs' }, FORMAT_OPTION],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx) {
    const c = ctx.client();
    const list = await stackServices(c, namespaceArg(ctx));
    const [tasks, nodes] = await Promise.all([c.tasks({ service: list.map((s) => s.ID) }), c.nodes()]);
    if (ctx.args.bool('quiet')) return ctx.io.out(tasks.map((t) => `${t.ID}\n`).join(''));
    if (ctx.args.str('format') === 'json') return ctx.io.out(json(tasks));
    ctx.io.out(taskTable(tasks, new Map(list.map((s) => [s.ID, s])), new Map<string, Node>(nodes.map((n) => [n.ID, n]))));
  },
};

const rm: Command = {
  name: 'rm',
  aliases: ['remove', 'down'],
  summary: 'Remove stacks: their services, networks, secrets and configs',
  usage: 'STACK [STACK…]',
  options: [],
  minArgs: 1,
  async run(ctx) {
    const c = ctx.client();
    let failed = false;
    for (const raw of ctx.args.positionals) {
      const ns = checkNamespace(raw);
      const cur = await current(c, ns);
      if (!cur.services.length && !cur.networks.length && !cur.secrets.length && !cur.configs.length) {
        ctx.io.err(`Nothing found in stack: ${ns}\n`);
        continue;
      }
      const step = async (what: string, f: () => Promise<unknown>) => {
        ctx.io.out(`Removing ${what}\n`);
        try {
          await f();
        } catch (e) {
          if (!(e instanceof ApiError)) throw e;
          ctx.io.err(`Error: failed to remove ${what}: ${e.message}\n`);
          failed = true;
        }
      };
      for (const s of cur.services) await step(`service ${s.Spec.Name}`, () => c.removeService(s.ID));
      for (const s of cur.secrets) await step(`secret ${s.Spec.Name}`, () => c.request('DELETE', `/secrets/${s.ID}`));
      for (const s of cur.configs) await step(`config ${s.Spec.Name}`, () => c.request('DELETE', `/configs/${s.ID}`));
      // The daemon holds a network's removal until the removed services' tasks have left it.
      for (const n of cur.networks) await step(`network ${n.Name}`, () => c.request('DELETE', `/networks/${n.Id}`));
    }
    return failed ? 1 : 0;
  },
};

export const stackGroup: Group = { name: 'stack', summary: 'Manage stacks (compose files deployed as services, networks, secrets and configs)', commands: [deploy, ls, services, ps, rm] };
