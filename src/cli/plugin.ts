/** `shoal plugin ls`: the third-party executors of the daemon, loaded and failed (with the error). */
import type { PluginView } from '../api/plugins.ts';
import { type Command, FORMAT_OPTION, type Group } from './command.ts';
import { json, table } from './format.ts';

export function pluginTable(plugins: readonly PluginView[]): string {
  return table(['NAME', 'RUNTIME', 'STATUS', 'FILE', 'ERROR'], plugins.map((p) => [
    p.Name, p.Runtime ?? '-', p.Enabled ? 'loaded' : 'failed', p.File, p.Error ?? '',
  ]));
}

const ls: Command = {
  name: 'ls',
  aliases: ['list'],
  summary: 'List the executor plugins of the daemon, and why any failed to load',
  usage: '[OPTIONS]',
  options: [FORMAT_OPTION, { long: 'quiet', short: 'q', kind: 'bool', help: 'only the runtimes of loaded plugins' }],
  maxArgs: 0,
  async run(ctx) {
    const plugins = await ctx.client().json<PluginView[]>('GET', '/plugins');
    if (ctx.args.bool('quiet')) return ctx.io.out(plugins.filter((p) => p.Enabled).map((p) => `${p.Runtime}\n`).join(''));
    ctx.io.out(ctx.args.str('format') === 'json' ? json(plugins) : pluginTable(plugins));
  },
};

export const pluginGroup: Group = { name: 'plugin', summary: 'Manage executor plugins', commands: [ls] };
