/**
 * Drives the compiled dist/shoal as a user would: a daemon in a temporary data dir, the CLI against
 * its unix socket. Everything waits for a condition with a bound; nothing sleeps for time to pass.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Subprocess } from 'bun';

export const SHOAL = resolve(import.meta.dir, '../../dist/shoal');

export function requireBinary(): void {
  if (!existsSync(SHOAL)) throw new Error(`${SHOAL} is missing: run "npm run build" first (npm test does it)`);
}

/** Poll `check` until it returns a truthy value; fail with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 15_000, everyMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await Bun.sleep(everyMs);
  }
}

export interface CliResult { code: number; stdout: string; stderr: string }

export class Daemon {
  proc: Subprocess | null = null;
  output = '';
  readonly socket: string;

  constructor(readonly dataDir: string, private readonly extraArgs: string[] = []) {
    this.socket = join(dataDir, 'shoal.sock');
  }

  get env(): Record<string, string> {
    return { ...(process.env as Record<string, string>), SHOAL_HOST: `unix://${this.socket}` };
  }

  async start(init = true): Promise<this> {
    requireBinary();
    rmSync(this.socket, { force: true });
    const args = [SHOAL, 'daemon', '--data-dir', this.dataDir, ...(init ? ['--init'] : []), ...this.extraArgs];
    this.proc = Bun.spawn(args, { stdout: 'pipe', stderr: 'pipe', env: this.env });
    void this.collect(this.proc.stdout as ReadableStream<Uint8Array>);
    void this.collect(this.proc.stderr as ReadableStream<Uint8Array>);
    await waitFor('the daemon API', async () => {
      if (this.proc?.exitCode !== null) throw new Error(`daemon exited with ${this.proc?.exitCode}: ${this.output}`);
      const r = await this.api('/_ping');
      return r.ok;
    });
    return this;
  }

  private async collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    const dec = new TextDecoder();
    for await (const chunk of stream) this.output += dec.decode(chunk);
  }

  api(path: string, init?: RequestInit): Promise<Response> {
    return fetch(`http://localhost${path}`, { ...init, unix: this.socket } as RequestInit);
  }

  async json<T = any>(path: string, init?: RequestInit): Promise<T> {
    const r = await this.api(path, init);
    if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as T;
  }

  async cli(...args: string[]): Promise<CliResult> {
    const p = Bun.spawn([SHOAL, ...args], { stdout: 'pipe', stderr: 'pipe', env: this.env });
    const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { code, stdout, stderr };
  }

  /** The CLI must succeed; returns its stdout. */
  async ok(...args: string[]): Promise<string> {
    const r = await this.cli(...args);
    if (r.code !== 0) throw new Error(`shoal ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  async tasks(filters: Record<string, string[]> = {}): Promise<any[]> {
    return this.json(`/tasks?filters=${encodeURIComponent(JSON.stringify(filters))}`);
  }

  async running(service: string): Promise<any[]> {
    const ts = await this.tasks({ service: [service] });
    return ts.filter((t) => t.Status.State === 'running' && t.DesiredState === 'running');
  }

  /** SIGTERM and wait: the daemon's own clean shutdown. */
  async stop(): Promise<number | null> {
    if (!this.proc || this.proc.exitCode !== null) return this.proc?.exitCode ?? null;
    this.proc.kill('SIGTERM');
    return await this.proc.exited;
  }

  /** kill -9: no chance to clean up. */
  async kill9(): Promise<void> {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.kill('SIGKILL');
    await this.proc.exited;
  }
}

/** A temporary data dir and a daemon in it, removed (with every task process) on dispose. */
export async function tempDaemon(extraArgs: string[] = []): Promise<Daemon & AsyncDisposable> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-it-'));
  const d = new Daemon(dir, extraArgs) as Daemon & AsyncDisposable;
  d[Symbol.asyncDispose] = async () => {
    await d.stop().catch(() => {});
    killTaskProcesses(dir);
    rmSync(dir, { recursive: true, force: true });
  };
  return d;
}

/**
 * Kill whatever process still has the data dir on its command line, or works in it (a task's cwd is
 * under `<data-dir>/tasks/`: the tasks of a daemon killed with -9 outlive it). Tests only.
 */
export function killTaskProcesses(dataDir: string): void {
  const r = Bun.spawnSync(['pgrep', '-f', dataDir]);
  const pids = new Set(r.stdout.toString().split('\n').filter(Boolean));
  const { readdirSync, readlinkSync } = require('node:fs') as typeof import('node:fs');
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readlinkSync(`/proc/${p}/cwd`).startsWith(`${dataDir}/`)) pids.add(p);
    } catch {}
  }
  for (const pid of pids) {
    try {
      process.kill(-Number(pid), 'SIGKILL');
    } catch {}
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {}
  }
}

/** Is a process with this pid alive (and not a zombie)? */
export function alive(pid: number): boolean {
  try {
    const stat = require('node:fs').readFileSync(`/proc/${pid}/stat`, 'utf8') as string;
    return !/^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

/** A TCP port free on `host` right now (the OS picks it; the caller binds it soon after). */
export function freePort(host = '127.0.0.1'): number {
  const s = Bun.listen({ hostname: host, port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

/** Hosts of one cluster on loopback: each a daemon with its own data dir and libp2p address. */
export class Fleet implements AsyncDisposable {
  readonly hosts: Daemon[] = [];
  readonly addrs = new Map<Daemon, string>();
  #n = 0;

  /**
   * A host on 127.0.0.<n> with a free port; `join` = [manager address, token]. Its ingress mesh
   * listens on 127.0.0.<n> too (`--mesh-addr`), so the hosts' published ports do not collide.
   */
  async add(opts: { init?: boolean; join?: [string, string]; args?: string[] } = {}): Promise<Daemon> {
    const ip = `127.0.0.${++this.#n}`;
    const addr = `${ip}:${freePort(ip)}`;
    const dir = mkdtempSync(join(tmpdir(), 'shoal-fleet-'));
    const args = ['--listen-addr', addr, '--mesh-addr', ip, ...(opts.join ? ['--join', opts.join[0], '--token', opts.join[1]] : []), ...(opts.args ?? [])];
    const d = new Daemon(dir, args);
    this.hosts.push(d);
    this.addrs.set(d, addr);
    await d.start(opts.init ?? false);
    return d;
  }

  addr(d: Daemon): string {
    return this.addrs.get(d)!;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all(this.hosts.map((d) => d.stop().catch(() => {})));
    for (const d of this.hosts) {
      killTaskProcesses(d.dataDir);
      rmSync(d.dataDir, { recursive: true, force: true });
    }
  }
}
