/** `shoal info`, `shoal version`. */
import { API_VERSION, COMMIT, VERSION } from '../lib/version.ts';
import { type Command, FORMAT_OPTION } from './command.ts';
import { infoText, json } from './format.ts';

export const infoCommand: Command = {
  name: 'info',
  summary: 'Show information about this host and its cluster',
  usage: '[OPTIONS]',
  options: [FORMAT_OPTION],
  maxArgs: 0,
  async run(ctx) {
    const info = await ctx.client().info();
    ctx.io.out(ctx.args.str('format') === 'json' ? json(info) : infoText(info));
  },
};

export function clientVersion() {
  return { Version: VERSION, ApiVersion: API_VERSION, GitCommit: COMMIT, Os: process.platform, Arch: process.arch === 'x64' ? 'amd64' : process.arch };
}

export const versionCommand: Command = {
  name: 'version',
  summary: 'Show the version of the CLI and of the daemon',
  usage: '[OPTIONS]',
  options: [FORMAT_OPTION],
  maxArgs: 0,
  async run(ctx) {
    const client = clientVersion();
    let server: any;
    let error: Error | undefined;
    try {
      server = await ctx.client().version();
    } catch (e) {
      error = e as Error;
    }
    if (ctx.args.str('format') === 'json') ctx.io.out(json({ Client: client, Server: server ?? null }));
    else {
      const lines = ['Client:', ` Version:     ${client.Version}`, ` API version: ${client.ApiVersion}`, ` Git commit:  ${client.GitCommit}`, ` OS/Arch:     ${client.Os}/${client.Arch}`];
      if (server) lines.push('', 'Server:', ` Version:     ${server.Version}`, ` API version: ${server.ApiVersion}`, ` Git commit:  ${server.GitCommit}`, ` OS/Arch:     ${server.Os}/${server.Arch}`);
      ctx.io.out(lines.join('\n') + '\n');
    }
    if (error) throw error;
  },
};
