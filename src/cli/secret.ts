/** `shoal secret|config create|ls|inspect|rm`: secrets and configs, as the docker CLI's. */
import { readFile } from 'node:fs/promises';
import { UsageError } from './args.ts';
import { ApiError } from './client.ts';
import { type Command, type Ctx, FORMAT_OPTION, type Group } from './command.ts';
import { ago, json, shortId, table } from './format.ts';
import { filtersOf } from './service.ts';
import { parseKeyValue } from './units.ts';

/** A secret or config as `GET /secrets` answers (a secret without Data). */
export interface FileObject {
  ID: string;
  Version: { Index: number };
  CreatedAt: string;
  UpdatedAt: string;
  Spec: { Name: string; Labels?: Record<string, string>; Data?: string };
}

export function fileObjectTable(objects: readonly FileObject[], now = Date.now()): string {
  return table(['ID', 'NAME', 'CREATED', 'UPDATED'], objects.map((o) => [shortId(o.ID), o.Spec.Name, ago(o.CreatedAt, now), ago(o.UpdatedAt, now)]));
}

async function readContent(ctx: Ctx, source: string): Promise<Uint8Array> {
  if (source === '-') {
    if (!ctx.io.stdin) throw new UsageError('standard input is not available here');
    return ctx.io.stdin();
  }
  try {
    return new Uint8Array(await readFile(source));
  } catch (e) {
    throw new UsageError(`cannot read ${source}: ${(e as Error).message}`);
  }
}

function group(kind: 'secret' | 'config'): Group {
  const path = `/${kind}s`;
  const create: Command = {
    name: 'create',
    summary: `Create a ${kind} from a file or standard input`,
    usage: `[OPTIONS] ${kind.toUpperCase()} FILE|-`,
    options: [{ long: 'label', short: 'l', kind: 'list', value: 'KEY=VALUE', help: `${kind} label (repeatable)` }],
    minArgs: 2,
    maxArgs: 2,
    async run(ctx) {
      const [name, source] = ctx.args.positionals as [string, string];
      const data = await readContent(ctx, source);
      const body = {
        Name: name,
        Labels: Object.fromEntries(ctx.args.list('label').map((l) => parseKeyValue('label', l))),
        Data: Buffer.from(data).toString('base64'),
      };
      data.fill(0);
      const r = await ctx.client().json<{ ID: string }>('POST', `${path}/create`, { body });
      ctx.io.out(`${r.ID}\n`);
    },
  };

  const ls: Command = {
    name: 'ls',
    aliases: ['list'],
    summary: `List ${kind}s`,
    usage: '[OPTIONS]',
    options: [
      { long: 'filter', short: 'f', kind: 'list', value: 'KEY=VALUE', help: 'filter: id, name, names, label' },
      { long: 'quiet', short: 'q', kind: 'bool', help: 'only IDs' },
      FORMAT_OPTION,
    ],
    maxArgs: 0,
    async run(ctx) {
      const f = filtersOf(ctx, 'filter');
      const objects = await ctx.client().json<FileObject[]>('GET', path, { query: { filters: f && JSON.stringify(f) } });
      if (ctx.args.bool('quiet')) return ctx.io.out(objects.map((o) => `${o.ID}\n`).join(''));
      ctx.io.out(ctx.args.str('format') === 'json' ? json(objects) : fileObjectTable(objects));
    },
  };

  const inspect: Command = {
    name: 'inspect',
    summary: `Show ${kind}s in detail (JSON)${kind === 'secret' ? ', never their content' : ''}`,
    usage: `[OPTIONS] ${kind.toUpperCase()} [${kind.toUpperCase()}…]`,
    options: [FORMAT_OPTION],
    minArgs: 1,
    async run(ctx) {
      const c = ctx.client();
      const out: FileObject[] = [];
      for (const ref of ctx.args.positionals) out.push(await c.json<FileObject>('GET', `${path}/${encodeURIComponent(ref)}`));
      ctx.io.out(json(out));
    },
  };

  const rm: Command = {
    name: 'rm',
    aliases: ['remove'],
    summary: `Remove ${kind}s (refused while services use them)`,
    usage: `${kind.toUpperCase()} [${kind.toUpperCase()}…]`,
    options: [],
    minArgs: 1,
    async run(ctx) {
      const c = ctx.client();
      let failed = false;
      for (const ref of ctx.args.positionals) {
        try {
          await c.request('DELETE', `${path}/${encodeURIComponent(ref)}`);
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

  return { name: kind, summary: kind === 'secret' ? 'Manage secrets (files given to tasks, never shown back)' : 'Manage configs (files given to tasks)', commands: [create, ls, inspect, rm] };
}

export const secretGroup = group('secret');
export const configGroup = group('config');
