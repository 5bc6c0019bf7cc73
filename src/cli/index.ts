/**
 * `shoal <group> <command> [OPTIONS] [ARGS]`: finds the command in the table, parses its options,
 * runs it, and turns every error into `Error: <message>` with exit code 1.
 */
import { formatOptions, parseArgs, UsageError } from './args.ts';
import { caGroup } from './ca.ts';
import { ApiError, ConnectError } from './client.ts';
import { clusterGroup } from './cluster.ts';
import { type Command, type Ctx, type Group, HELP_OPTION, HOST_OPTION, type Io, makeClient, processIo } from './command.ts';
import { daemonCommand } from './daemon.ts';
import { eventsCommand } from './events.ts';
import { fleetGroup } from './fleet.ts';
import { networkGroup } from './network.ts';
import { configGroup, secretGroup } from './secret.ts';
import { nodeGroup } from './node.ts';
import { pluginGroup } from './plugin.ts';
import { ConvergeError } from './progress.ts';
import { serviceGroup } from './service.ts';
import { stackGroup } from './stack.ts';
import { infoCommand, versionCommand } from './system.ts';
import { COMMIT, VERSION } from '../lib/version.ts';

export const GROUPS: Group[] = [serviceGroup, nodeGroup, clusterGroup, networkGroup, secretGroup, configGroup, stackGroup, pluginGroup, caGroup, fleetGroup];
export const TOP: Command[] = [daemonCommand, eventsCommand, infoCommand, versionCommand];

export function mainHelp(): string {
  const rows: [string, string][] = [
    ...GROUPS.map((g) => [g.name, g.summary] as [string, string]),
    ...TOP.map((c) => [c.name, c.summary] as [string, string]),
  ];
  const w = Math.max(...rows.map(([n]) => n.length));
  return [
    'Usage: shoal [-H HOST] COMMAND',
    '',
    'An orchestrator for processes, containers and more: Docker Swarm mode, rebuilt.',
    '',
    'Commands:',
    ...rows.map(([n, s]) => `  ${n.padEnd(w)}   ${s}`),
    '',
    'Options:',
    formatOptions([HOST_OPTION, { long: 'tlsverify', kind: 'bool', help: 'verify the daemon of a tcp:// host against ca.pem (always done; accepted as docker does)' }, { long: 'version', short: 'v', kind: 'bool', help: 'print the version' }, HELP_OPTION]),
    '',
    'Run "shoal COMMAND --help" for more about a command.',
    '',
  ].join('\n');
}

function groupHelp(g: Group): string {
  const w = Math.max(...g.commands.map((c) => c.name.length));
  return [`Usage: shoal ${g.name} COMMAND`, '', g.summary, '', 'Commands:', ...g.commands.map((c) => `  ${c.name.padEnd(w)}   ${c.summary}`), '', `Run "shoal ${g.name} COMMAND --help" for more about a command.`, ''].join('\n');
}

function commandHelp(path: string, c: Command): string {
  const opts = [...c.options, HOST_OPTION, HELP_OPTION];
  return [`Usage: shoal ${path} ${c.usage}`, '', c.summary, '', 'Options:', formatOptions(opts), ''].join('\n');
}

function find(cmds: Command[], name: string): Command | undefined {
  return cmds.find((c) => c.name === name || c.aliases?.includes(name));
}

/** Runs the CLI; resolves with the exit code. */
export async function runCli(argv: string[], io: Io = processIo): Promise<number> {
  const ac = new AbortController();
  try {
    // Leading global options: -H HOST, --help, --version.
    let i = 0;
    let host: string | undefined;
    while (i < argv.length && argv[i]!.startsWith('-')) {
      const a = argv[i]!;
      if (a === '-H' || a === '--host') {
        if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: ${a}`);
        host = argv[i + 1];
        i += 2;
      } else if (a.startsWith('--host=')) {
        host = a.slice('--host='.length);
        i++;
      } else if (a === '--tlsverify') {
        // Docker's flag, accepted for its habit: a tcp:// host is always verified against the bundle's ca.pem.
        i++;
      } else if (a === '-h' || a === '--help') {
        io.out(mainHelp());
        return 0;
      } else if (a === '-v' || a === '--version') {
        // This executable's own version, without asking a daemon (docker --version does the same);
        // an upgrade probes a staged executable with it.
        io.out(`shoal version ${VERSION}, build ${COMMIT}\n`);
        return 0;
      } else throw new UsageError(`unknown flag: ${a}`);
    }
    const name = argv[i];
    if (name === undefined || name === 'help') {
      io.out(mainHelp());
      return name === undefined ? 1 : 0;
    }
    const group = GROUPS.find((g) => g.name === name || g.aliases?.includes(name));
    let cmd: Command | undefined;
    let path = name;
    let rest: string[];
    if (group) {
      const sub = argv[i + 1];
      if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
        io.out(groupHelp(group));
        return sub === undefined ? 1 : 0;
      }
      cmd = find(group.commands, sub);
      if (!cmd) throw new UsageError(`unknown command "shoal ${name} ${sub}" (commands: ${group.commands.map((c) => c.name).join(', ')})`);
      path = `${group.name} ${cmd.name}`;
      rest = argv.slice(i + 2);
    } else {
      cmd = find(TOP, name);
      if (!cmd) throw new UsageError(`unknown command "${name}": run "shoal --help"`);
      rest = argv.slice(i + 1);
    }
    const args = parseArgs(rest, [...cmd.options, HOST_OPTION, HELP_OPTION], { stopAtPositional: cmd.stopAtPositional });
    if (args.bool('help')) {
      io.out(commandHelp(path, cmd));
      return 0;
    }
    const n = args.positionals.length;
    if (cmd.minArgs !== undefined && n < cmd.minArgs) throw new UsageError(`"shoal ${path}" requires at least ${cmd.minArgs} argument${cmd.minArgs > 1 ? 's' : ''}: shoal ${path} ${cmd.usage}`);
    if (cmd.maxArgs !== undefined && n > cmd.maxArgs) throw new UsageError(`"shoal ${path}" accepts ${cmd.maxArgs === 0 ? 'no arguments' : `at most ${cmd.maxArgs} argument${cmd.maxArgs > 1 ? 's' : ''}`}, got "${args.positionals.join(' ')}"`);
    if (host !== undefined && !args.has('host')) args.values.set('host', host);
    const format = args.str('format');
    if (format !== undefined && format !== 'json' && format !== 'table') throw new UsageError(`invalid value "${format}" for --format: expected json or table`);
    const ctx: Ctx = { args, io, client: () => makeClient(args, io.env), signal: ac.signal };
    const code = await cmd.run(ctx);
    return typeof code === 'number' ? code : 0;
  } catch (e) {
    io.err(`Error: ${describe(e)}\n`);
    return 1;
  }
}

function describe(e: unknown): string {
  if (e instanceof UsageError || e instanceof ApiError || e instanceof ConnectError || e instanceof ConvergeError) return e.message;
  if (e instanceof Error) return e.message || e.name;
  return String(e);
}
