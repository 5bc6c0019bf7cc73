/**
 * Running iproute2 (`ip`, `bridge`) for the overlay plumbing: argv in, result out, in this host's
 * network namespace or another one (`ip netns exec NAME`, or `nsenter -t PID -n` for a task's
 * process). Tests pass a runner that targets a namespace standing in for a host.
 */
import { ShoalError } from '../lib/errors.ts';

export interface CmdResult { code: number; stdout: string; stderr: string }
export type Runner = (argv: readonly string[]) => Promise<CmdResult>;

/** A network namespace: a named one (`ip netns add`), or the one a process is in. */
export type NetnsRef = { name: string } | { pid: number };

/** A command of the overlay that failed; says which command and what it printed. */
export class OverlayCommandError extends ShoalError {
  constructor(readonly argv: readonly string[], readonly result: CmdResult) {
    super(`overlay: "${argv.join(' ')}" failed (exit ${result.code}): ${result.stderr.trim() || result.stdout.trim()}`);
  }
}

/** Bound on one command: iproute2 answers in milliseconds; one that hangs is a broken host. */
const COMMAND_TIMEOUT_MS = 10_000;

async function spawnCmd(argv: readonly string[]): Promise<CmdResult> {
  const p = Bun.spawn([...argv], { stdout: 'pipe', stderr: 'pipe', stdin: 'ignore', timeout: COMMAND_TIMEOUT_MS });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

/** Prefix that runs a command inside `ns`. */
export function nsPrefix(ns: NetnsRef): string[] {
  return 'name' in ns ? ['ip', 'netns', 'exec', ns.name] : ['nsenter', '-t', String(ns.pid), '-n'];
}

/** Commands in this process's namespace, or inside `ns`. */
export function hostRunner(ns?: NetnsRef): Runner {
  const prefix = ns ? nsPrefix(ns) : [];
  return (argv) => spawnCmd([...prefix, ...argv]);
}

/** Run and throw OverlayCommandError on a non-zero exit. */
export async function must(run: Runner, argv: readonly string[]): Promise<string> {
  const r = await run(argv);
  if (r.code !== 0) throw new OverlayCommandError(argv, r);
  return r.stdout;
}

/** Run, accepting the failures that mean "already in the wanted state" (e.g. a device already gone). */
export async function tolerate(run: Runner, argv: readonly string[], ok: RegExp): Promise<void> {
  const r = await run(argv);
  if (r.code !== 0 && !ok.test(r.stderr)) throw new OverlayCommandError(argv, r);
}

/** `ip -j …` output as JSON (iproute2 prints nothing at all for an empty list on some versions). */
export async function jsonOf<T>(run: Runner, argv: readonly string[]): Promise<T[]> {
  const r = await run(argv);
  if (r.code !== 0) {
    if (/does not exist|Cannot find device|not found/i.test(r.stderr)) return [];
    throw new OverlayCommandError(argv, r);
  }
  const text = r.stdout.trim();
  return text ? (JSON.parse(text) as T[]) : [];
}
