/** `shoal service create|ls|ps|inspect|scale|update|rollback|rm|logs`. */
import type { Node, Service } from '../types/index.ts';
import { UsageError } from './args.ts';
import { ApiError } from './client.ts';
import { type Command, type Ctx, FORMAT_OPTION, type Group } from './command.ts';
import { json, serviceTable, taskTable } from './format.ts';
import { waitConverged } from './progress.ts';
import { applyServiceUpdate, buildServiceSpec, CREATE_OPTIONS, UPDATE_OPTIONS, waitOptions } from './service-opts.ts';
import { parseDuration, parseKeyValue, parseScaleArgs, parseSince } from './units.ts';

const DEFAULT_WAIT_MS = 60_000;

function waitMs(ctx: Ctx): number {
  const raw = ctx.args.str('wait-timeout');
  return raw === undefined ? DEFAULT_WAIT_MS : parseDuration('wait-timeout', raw) / 1e6;
}

async function converge(ctx: Ctx, id: string, known?: Set<string>, action: 'update' | 'rollback' = 'update'): Promise<void> {
  const quiet = ctx.args.bool('quiet');
  await waitConverged(ctx.client(), id, {
    timeoutMs: waitMs(ctx),
    write: quiet ? () => {} : ctx.io.out,
    tty: ctx.io.tty,
    signal: ctx.signal,
    known,
    action,
  });
}

async function taskIds(ctx: Ctx, id: string): Promise<Set<string>> {
  return new Set((await ctx.client().tasks({ service: [id] })).map((t) => t.ID));
}

const create: Command = {
  name: 'create',
  summary: 'Create a service',
  usage: '[OPTIONS] PROGRAM [ARG…]   (--runtime container: IMAGE [CMD…]; --runtime mock: no program)',
  options: CREATE_OPTIONS,
  stopAtPositional: true,
  async run(ctx) {
    if (ctx.args.has('wait-timeout')) waitMs(ctx);
    const spec = buildServiceSpec(ctx.args, ctx.io.env);
    const r = await ctx.client().createService(spec);
    ctx.io.out(`${r.ID}\n`);
    for (const w of r.Warnings ?? []) ctx.io.err(`Warning: ${w}\n`);
    if (!ctx.args.bool('detach')) await converge(ctx, r.ID);
  },
};

const ls: Command = {
  name: 'ls',
  aliases: ['list'],
  summary: 'List services',
  usage: '[OPTIONS]',
  options: [
    { long: 'filter', short: 'f', kind: 'list', value: 'KEY=VALUE', help: 'filter: id, name, label, mode, runtime' },
    { long: 'quiet', short: 'q', kind: 'bool', help: 'only IDs' },
    FORMAT_OPTION,
  ],
  maxArgs: 0,
  async run(ctx) {
    const services = await ctx.client().services(filtersOf(ctx, 'filter'), true);
    if (ctx.args.bool('quiet')) return ctx.io.out(services.map((s) => `${s.ID}\n`).join(''));
    ctx.io.out(ctx.args.str('format') === 'json' ? json(services) : serviceTable(services));
  },
};

export function filtersOf(ctx: Ctx, flag: string): Record<string, string[]> | undefined {
  const list = ctx.args.list(flag);
  if (!list.length) return undefined;
  const f: Record<string, string[]> = {};
  for (const x of list) {
    const [k, v] = parseKeyValue(flag, x, true);
    (f[k] ??= []).push(v);
  }
  return f;
}

const ps: Command = {
  name: 'ps',
  summary: 'List the tasks of one or more services',
  usage: '[OPTIONS] SERVICE [SERVICE…]',
  options: [
    { long: 'filter', short: 'f', kind: 'list', value: 'KEY=VALUE', help: 'filter: desired-state, node, id, name' },
    { long: 'quiet', short: 'q', kind: 'bool', help: 'only IDs' },
    FORMAT_OPTION,
  ],
  minArgs: 1,
  async run(ctx) {
    const c = ctx.client();
    const services = await Promise.all(ctx.args.positionals.map((ref) => c.service(ref)));
    const filters = { ...filtersOf(ctx, 'filter'), service: services.map((s) => s.ID) };
    const [tasks, nodes] = await Promise.all([c.tasks(filters), c.nodes()]);
    if (ctx.args.bool('quiet')) return ctx.io.out(tasks.map((t) => `${t.ID}\n`).join(''));
    if (ctx.args.str('format') === 'json') return ctx.io.out(json(tasks));
    ctx.io.out(taskTable(tasks, new Map(services.map((s) => [s.ID, s])), new Map<string, Node>(nodes.map((n) => [n.ID, n]))));
  },
};

const inspect: Command = {
  name: 'inspect',
  summary: 'Show services in detail (JSON)',
  usage: '[OPTIONS] SERVICE [SERVICE…]',
  options: [FORMAT_OPTION],
  minArgs: 1,
  async run(ctx) {
    const c = ctx.client();
    const services: Service[] = [];
    for (const ref of ctx.args.positionals) services.push(await c.service(ref));
    ctx.io.out(json(services));
  },
};

const scale: Command = {
  name: 'scale',
  summary: 'Set the number of replicas of services',
  usage: '[OPTIONS] SERVICE=REPLICAS [SERVICE=REPLICAS…]',
  options: waitOptions('the tasks to converge'),
  async run(ctx) {
    const pairs = parseScaleArgs(ctx.args.positionals);
    if (ctx.args.has('wait-timeout')) waitMs(ctx);
    const c = ctx.client();
    const changed: { id: string; known: Set<string> }[] = [];
    let failed = 0;
    for (const [ref, n] of pairs) {
      try {
        const svc = await c.service(ref);
        if (svc.Spec.Mode?.Global || svc.Spec.Mode?.GlobalJob) throw new UsageError(`${svc.Spec.Name}: scale can only be used with replicated or replicated-job services`);
        const known = await taskIds(ctx, svc.ID);
        // A replicated job: its number of completions (which runs it again, as any update of a job).
        const mode = svc.Spec.Mode?.ReplicatedJob ? { ReplicatedJob: { ...svc.Spec.Mode.ReplicatedJob, TotalCompletions: n } } : { Replicated: { Replicas: n } };
        await c.updateService(svc.ID, svc.Version.Index, { ...svc.Spec, Mode: mode });
        ctx.io.out(`${svc.Spec.Name} scaled to ${n}\n`);
        changed.push({ id: svc.ID, known });
      } catch (e) {
        if (pairs.length === 1) throw e;
        ctx.io.err(`Error: ${ref}: ${(e as Error).message}\n`);
        failed++;
      }
    }
    if (!ctx.args.bool('detach')) for (const { id, known } of changed) await converge(ctx, id, known);
    return failed ? 1 : 0;
  },
};

const update: Command = {
  name: 'update',
  summary: 'Update a service',
  usage: '[OPTIONS] SERVICE',
  options: UPDATE_OPTIONS,
  minArgs: 1,
  maxArgs: 1,
  async run(ctx) {
    if (ctx.args.has('wait-timeout')) waitMs(ctx);
    const c = ctx.client();
    const svc = await c.service(ctx.args.positionals[0]!);
    const networks = ctx.args.has('network-add') || ctx.args.has('network-rm') ? await c.json<{ Id: string; Name: string }[]>('GET', '/networks') : [];
    const spec = applyServiceUpdate(svc.Spec, ctx.args, ctx.io.env, networks);
    const known = await taskIds(ctx, svc.ID);
    const r = await c.updateService(svc.ID, svc.Version.Index, spec);
    for (const w of r.Warnings ?? []) ctx.io.err(`Warning: ${w}\n`);
    ctx.io.out(`${svc.Spec.Name}\n`);
    if (!ctx.args.bool('detach')) await converge(ctx, svc.ID, known);
  },
};

const rollback: Command = {
  name: 'rollback',
  summary: 'Go back to the service\'s previous spec (rolled out under its RollbackConfig)',
  usage: '[OPTIONS] SERVICE',
  options: waitOptions('the rollback to finish'),
  minArgs: 1,
  maxArgs: 1,
  async run(ctx) {
    if (ctx.args.has('wait-timeout')) waitMs(ctx);
    const c = ctx.client();
    const svc = await c.service(ctx.args.positionals[0]!);
    const known = await taskIds(ctx, svc.ID);
    await c.rollbackService(svc.ID, svc.Version.Index);
    ctx.io.out(`${svc.Spec.Name}\n`);
    if (!ctx.args.bool('detach')) await converge(ctx, svc.ID, known, 'rollback');
  },
};

const rm: Command = {
  name: 'rm',
  aliases: ['remove'],
  summary: 'Remove services',
  usage: 'SERVICE [SERVICE…]',
  options: [],
  minArgs: 1,
  async run(ctx) {
    const c = ctx.client();
    let failed = 0;
    for (const ref of ctx.args.positionals) {
      try {
        await c.removeService(ref);
        ctx.io.out(`${ref}\n`);
      } catch (e) {
        if (ctx.args.positionals.length === 1) throw e;
        ctx.io.err(`Error: ${(e as Error).message}\n`);
        failed++;
      }
    }
    return failed ? 1 : 0;
  },
};

const logs: Command = {
  name: 'logs',
  summary: 'Show the logs of a service\'s tasks ("<task> | <line>")',
  usage: '[OPTIONS] SERVICE|TASK',
  options: [
    { long: 'follow', short: 'f', kind: 'bool', help: 'keep printing new lines' },
    { long: 'tail', short: 'n', kind: 'string', value: 'N', help: 'only the last N lines of each task (default all)' },
    { long: 'since', kind: 'string', value: 'WHEN', help: 'only lines since a time (RFC 3339) or a duration ago (e.g. 1m)' },
    { long: 'timestamps', short: 't', kind: 'bool', help: 'show timestamps' },
  ],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx) {
    const tail = ctx.args.str('tail');
    if (tail !== undefined && tail !== 'all' && !/^\d+$/.test(tail)) throw new UsageError(`invalid value "${tail}" for --tail: expected a number of lines or "all"`);
    const since = ctx.args.str('since');
    const query = {
      follow: ctx.args.bool('follow') ? 1 : undefined,
      tail,
      since: since === undefined ? undefined : parseSince(since),
      timestamps: ctx.args.bool('timestamps') ? 1 : undefined,
      stdout: 1,
      stderr: 1,
    };
    const c = ctx.client();
    const ref = ctx.args.positionals[0]!;
    let res: Response;
    try {
      res = await c.serviceLogs(ref, query, ctx.signal);
    } catch (e) {
      // As docker: the argument may name one task instead of a service.
      if (!(e instanceof ApiError && e.status === 404)) throw e;
      try {
        res = await c.taskLogs(ref, query, ctx.signal);
      } catch {
        throw e;
      }
    }
    const dec = new TextDecoder();
    for await (const chunk of res.body ?? []) ctx.io.out(dec.decode(chunk as Uint8Array, { stream: true }));
  },
};

export const serviceGroup: Group = { name: 'service', summary: 'Manage services', commands: [create, ls, ps, inspect, scale, update, rollback, rm, logs] };
