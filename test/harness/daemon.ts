/**
 * dist/shoal daemons as a user runs them: each in its own data dir, its API and CLI reached through
 * the unix socket there, its output kept for the test (and printed on failure, see logs.ts). A daemon
 * runs in the test's own network namespace (loopback addresses), or inside a namespace host
 * (hosts.ts); either way the test talks to it the same way. It can be stopped, killed with any
 * signal, and started again on its data dir.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Subprocess } from 'bun';
import type { NetHost, NetnsHosts } from './hosts.ts';
import { noteDisposed, noteStarted } from './logs.ts';
import { waitFor } from './wait.ts';

export const SHOAL = resolve(import.meta.dir, '../../dist/shoal');

export function requireBinary(): void {
  if (!existsSync(SHOAL)) throw new Error(`${SHOAL} is missing: run "npm run build" first (npm test does it)`);
}

export interface CliResult { code: number; stdout: string; stderr: string }

export interface DaemonPlace {
  /** How logs and errors name it (default: its data dir). */
  name?: string;
  /** Run inside this namespace host instead of the test's own namespace. */
  netns?: { hosts: NetnsHosts; host: NetHost };
  /** Remove the data dir (and kill what still works in it) at dispose. */
  ownsDataDir?: boolean;
  /** Run this executable instead of dist/shoal (an upgrade test gives each daemon its own copy to replace). */
  binary?: string;
}

export class Daemon implements AsyncDisposable {
  proc: Subprocess | null = null;
  /** Everything it printed (stdout and stderr), across restarts. */
  output = '';
  readonly socket: string;
  readonly name: string;
  /** Bound for start() to see the API answer (raise it on a loaded machine). */
  startTimeoutMs = 15_000;

  /** `args`: further `shoal daemon` arguments, given again at every start (a test may add to them). */
  constructor(readonly dataDir: string, readonly args: string[] = [], private readonly place: DaemonPlace = {}) {
    this.socket = join(dataDir, 'shoal.sock');
    this.name = place.name ?? dataDir;
  }

  /** The executable it runs. */
  get binary(): string {
    return this.place.binary ?? SHOAL;
  }

  /** The namespace host it runs in, if any. */
  get host(): NetHost | undefined {
    return this.place.netns?.host;
  }

  /** Its libp2p address (`--listen-addr`), what others join. */
  get addr(): string {
    const i = this.args.indexOf('--listen-addr');
    if (i < 0 || !this.args[i + 1]) throw new Error(`daemon ${this.name} was given no --listen-addr`);
    return this.args[i + 1]!;
  }

  get env(): Record<string, string> {
    return { ...(process.env as Record<string, string>), SHOAL_HOST: `unix://${this.socket}` };
  }

  get isRunning(): boolean {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Start it (`--init` when `init`) and wait until its API answers. */
  async start(init = true): Promise<this> {
    requireBinary();
    rmSync(this.socket, { force: true });
    const argv = [this.binary, 'daemon', '--data-dir', this.dataDir, ...(init ? ['--init'] : []), ...this.args];
    const at = this.place.netns;
    const p = at ? at.hosts.spawn(at.host, argv, { env: this.env }) : Bun.spawn(argv, { stdout: 'pipe', stderr: 'pipe', env: this.env });
    this.proc = p as Subprocess;
    noteStarted(this);
    void this.collect(p.stdout as ReadableStream<Uint8Array>);
    void this.collect(p.stderr as ReadableStream<Uint8Array>);
    let up = false;
    // A daemon that exits while starting (a join refused, a bad flag) fails the start at once, not at the bound.
    const exited = p.exited.then(async (code) => {
      if (up) return;
      await Bun.sleep(50); // the last of its output
      throw new Error(`daemon ${this.name} exited with ${code} while starting: ${this.output.trim().split('\n').slice(-5).join('\n')}`);
    });
    await Promise.race([
      waitFor(`the daemon API${at ? ` in host ${at.host.index}` : ''}`, async () => (await this.api('/_ping')).ok, this.startTimeoutMs),
      exited,
    ]).finally(() => {
      up = true;
    });
    exited.catch(() => {});
    return this;
  }

  private async collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    const dec = new TextDecoder();
    for await (const chunk of stream) this.output += dec.decode(chunk);
  }

  /**
   * A fresh connection per request (keepalive: false): bun pools unix-socket connections, and a pooled
   * one left behind by an aborted request or a paused daemon hung later requests to a daemon that
   * curl found answering at once (the chaos suite's runs).
   */
  api(path: string, init?: RequestInit): Promise<Response> {
    return fetch(`http://localhost${path}`, { keepalive: false, ...init, unix: this.socket } as RequestInit);
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
    if (!this.isRunning) return this.proc?.exitCode ?? null;
    this.proc!.kill('SIGTERM');
    return await this.proc!.exited;
  }

  /** Send `signal` and wait for the process to end (SIGKILL: no chance to clean up). */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.isRunning) return;
    this.proc!.kill(signal);
    await this.proc!.exited;
  }

  /** kill -9. */
  kill9(): Promise<void> {
    return this.kill('SIGKILL');
  }

  /** Send `signal` and return at once (SIGSTOP / SIGCONT: a paused host). */
  signal(signal: NodeJS.Signals): void {
    if (this.isRunning) this.proc!.kill(signal);
  }

  /** Stopped (SIGTERM) if still running, then started again on its data dir, without --init. */
  async restart(): Promise<this> {
    await this.stop();
    return this.start(false);
  }

  /** SIGKILL without waiting (for synchronous cleanup). */
  killNow(): void {
    if (this.isRunning) this.proc!.kill('SIGKILL');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop().catch(() => {});
    noteDisposed(this);
    if (this.place.ownsDataDir) {
      killTaskProcesses(this.dataDir);
      rmSync(this.dataDir, { recursive: true, force: true });
    }
  }
}

/** A temporary data dir and a daemon in it (not started), removed (with every task process) on dispose. */
export async function tempDaemon(extraArgs: string[] = []): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-it-'));
  return new Daemon(dir, extraArgs, { ownsDataDir: true });
}

/**
 * Kill whatever process still has the data dir on its command line, or works in it (a task's cwd is
 * under `<data-dir>/tasks/`: the tasks of a daemon killed with -9 outlive it). Tests only.
 */
export function killTaskProcesses(dataDir: string): void {
  const r = Bun.spawnSync(['pgrep', '-f', dataDir]);
  const pids = new Set(r.stdout.toString().split('\n').filter(Boolean));
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
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

/** A TCP port free on `host` right now (the OS picks it; the caller binds it soon after). */
/**
 * A temporary daemon serving the admin API on 127.0.0.1 over mutual TLS (`--listen-tcp`), started,
 * with two client bundles written under `bundleDir`: `alice` (admin) and `bob` (read-only).
 */
export async function tlsDaemon(bundleDir: string): Promise<{ d: Daemon; tcp: number }> {
  const tcp = freePort();
  const d = await tempDaemon(['--listen-tcp', `127.0.0.1:${tcp}`, '--listen-addr', `127.0.0.1:${freePort()}`]);
  await d.start();
  await waitFor('the TCP API', () => d.output.includes(`admin API on tcp://127.0.0.1:${tcp}`), 20_000);
  await d.ok('ca', 'client-bundle', '--name', 'alice', '--out', join(bundleDir, 'alice'));
  await d.ok('ca', 'client-bundle', '--name', 'bob', '--role', 'read-only', '--out', join(bundleDir, 'bob'));
  return { d, tcp };
}

/** Ports freePort returned in this process: never handed out twice, on any address. */
const handedOut = new Set<number>();

export function freePort(host = '127.0.0.1'): number {
  // Two free ports drawn on two addresses (or one after the other) can be the same number; a test
  // that publishes one as the other's target is then refused by the API (mesh.test.ts, once in CI).
  for (;;) {
    const s = Bun.listen({ hostname: host, port: 0, socket: { data() {} } });
    const port = s.port;
    s.stop(true);
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}
