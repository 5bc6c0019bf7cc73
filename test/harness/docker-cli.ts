/**
 * The stock docker CLI pointed at a daemon's socket, as a user with DOCKER_HOST would run it (hints
 * off); killed after `timeoutMs`. stdout and stderr apart, for tests that assert on each.
 */
import type { Daemon } from './daemon.ts';

export interface DockerRun { code: number; out: string; err: string }

export async function runDocker(d: Daemon, args: string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<DockerRun> {
  const p = Bun.spawn(['docker', ...args], {
    stdout: 'pipe',
    stderr: 'pipe',
    stdin: opts.stdin === undefined ? 'ignore' : Buffer.from(opts.stdin),
    env: { ...(process.env as Record<string, string>), DOCKER_HOST: `unix://${d.socket}`, DOCKER_CLI_HINTS: 'false' },
  });
  const timer = setTimeout(() => p.kill(), opts.timeoutMs ?? 30_000);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, out, err };
}
