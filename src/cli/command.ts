/** The shape of a CLI command and what it runs with. */
import type { OptionDef, Parsed } from './args.ts';
import { certPath, Client, resolveHost } from './client.ts';

export interface Io {
  out(s: string): void;
  err(s: string): void;
  tty: boolean;
  env: Record<string, string | undefined>;
  /** All of standard input (`secret create NAME -`). */
  stdin?(): Promise<Uint8Array>;
}

export const processIo: Io = {
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
  stdin: async () => new Uint8Array(await Bun.stdin.arrayBuffer()),
  tty: !!process.stdout.isTTY,
  env: process.env,
};

export interface Ctx {
  args: Parsed;
  io: Io;
  /** The API client for `-H` / SHOAL_HOST / the default socket. */
  client(): Client;
  signal: AbortSignal;
}

export interface Command {
  name: string;
  aliases?: string[];
  summary: string;
  /** After `shoal <group> <name> `: e.g. `[OPTIONS] SERVICE`. */
  usage: string;
  options: OptionDef[];
  stopAtPositional?: boolean;
  /** Exact positional count bounds. */
  minArgs?: number;
  maxArgs?: number;
  run(ctx: Ctx): Promise<number | void>;
}

export interface Group {
  name: string;
  /** Other names of the group (`swarm` for `cluster`, Docker's). */
  aliases?: string[];
  summary: string;
  commands: Command[];
}

export const HOST_OPTION: OptionDef = { long: 'host', short: 'H', kind: 'string', value: 'HOST', help: 'daemon to talk to: unix:///path/shoal.sock or tcp://host:port, mutual TLS with the bundle in SHOAL_CERT_PATH (env SHOAL_HOST)' };
export const HELP_OPTION: OptionDef = { long: 'help', kind: 'bool', help: 'print usage' };
export const FORMAT_OPTION: OptionDef = { long: 'format', kind: 'string', value: 'json|table', help: 'output format' };

export function makeClient(args: Parsed, env: Io['env']): Client {
  return new Client(resolveHost(args.str('host'), env), certPath(env));
}
