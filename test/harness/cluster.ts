/**
 * One shoal cluster of dist/shoal daemons, the way every multi-host test and the chaos suite make one:
 *
 *   await using c = Cluster.loopback();                  // hosts on 127.0.0.1, .2, … (one kernel)
 *   await using c = await Cluster.netns({ hosts: 8 });   // hosts as network namespaces (partitions)
 *   const { managers, workers, ids } = await c.boot({ managers: 5, workers: 3 });
 *   await managers[0].kill();  …  await managers[0].start(false);      // kill -9, restart
 *   c.net?.partition([managers[0].host!], …);  c.net?.heal();
 *
 * Every daemon has its own data dir under the cluster's temporary dir; dispose stops the daemons
 * (SIGTERM on loopback; SIGKILL in namespace hosts, whose removal takes everything in them), kills
 * what their tasks left running, removes the dirs and the namespace hosts. A test that times out
 * never reaches its `await using`: `afterEach(() => disposeAll())` and the process's exit do it then.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon, freePort, killTaskProcesses, SHOAL } from './daemon.ts';
import { disposeAllHosts, NetnsHosts, type NetnsOptions } from './hosts.ts';
import { noteDisposed } from './logs.ts';
import { waitFor } from './wait.ts';

/** The libp2p port of a daemon in a namespace host (each host has its own address). */
export const NETNS_PORT = 4242;

export interface AddOptions {
  /** `shoal daemon --init`: a new cluster. */
  init?: boolean;
  /** [address of a member, join token]. */
  join?: [string, string];
  /** Further `shoal daemon` arguments. */
  args?: string[];
  /** How logs name it (default h<N>). */
  name?: string;
  /** Run a copy of dist/shoal of its own (an upgrade replaces it in place). */
  ownBinary?: boolean;
}

export interface BootOptions {
  managers: number;
  workers: number;
  /** Arguments of `shoal cluster init` for the first manager; without them, `shoal daemon --init`. */
  init?: string[];
  /** Bound for every node ready and every manager reachable. */
  readyMs?: number;
  /** Every daemon runs a copy of dist/shoal of its own (AddOptions.ownBinary). */
  ownBinaries?: boolean;
}

export interface Booted {
  managers: Daemon[];
  workers: Daemon[];
  /** Each daemon's node id. */
  ids: Map<Daemon, string>;
}

const nodesOf = (d: Daemon) => d.json<any[]>('/nodes');

const live = new Set<Cluster>();
let exitHook = false;

/** Dispose every cluster and namespace host still alive (an afterEach: a timed-out test skips its own cleanup). */
export function disposeAll(): void {
  const errors: string[] = [];
  for (const c of [...live]) {
    try {
      c.dispose();
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  try {
    disposeAllHosts();
  } catch (e) {
    errors.push((e as Error).message);
  }
  if (errors.length) throw new Error(errors.join('; '));
}

export class Cluster implements AsyncDisposable {
  readonly daemons: Daemon[] = [];
  /** Join tokens, once boot() or tokensOf() has read them. */
  tokens: { manager: string; worker: string } = { manager: '', worker: '' };
  readonly dir = mkdtempSync(join(tmpdir(), 'shoal-cluster-'));
  /** Each daemon's bound for its API to answer at a start (Daemon.startTimeoutMs). */
  startTimeoutMs = 15_000;
  private disposed = false;

  private constructor(readonly net?: NetnsHosts) {
    live.add(this);
    if (!exitHook) {
      exitHook = true;
      process.on('exit', () => {
        try {
          disposeAll();
        } catch (e) {
          console.error(`cluster harness: ${(e as Error).message}`);
        }
      });
    }
  }

  /** Hosts on loopback addresses (127.0.0.N), each with a free port and its own mesh address. */
  static loopback(): Cluster {
    return new Cluster();
  }

  /** `hosts` namespace hosts on one bridge (hosts.ts); the N-th daemon added runs in host N. */
  static async netns(opts: NetnsOptions): Promise<Cluster> {
    return new Cluster(await NetnsHosts.create(opts));
  }

  /** A new daemon on the next host, started (its API answering). */
  async add(opts: AddOptions = {}): Promise<Daemon> {
    const n = this.daemons.length;
    const joining = opts.join ? ['--join', opts.join[0], '--token', opts.join[1]] : [];
    const name = opts.name ?? `h${n}`;
    let binary: string | undefined;
    if (opts.ownBinary) {
      mkdirSync(join(this.dir, `bin-h${n}`), { recursive: true });
      binary = join(this.dir, `bin-h${n}`, 'shoal');
      copyFileSync(SHOAL, binary);
    }
    let d: Daemon;
    if (this.net) {
      const host = this.net.hosts[n];
      if (!host) throw new Error(`daemon ${n}: the cluster has only ${this.net.hosts.length} namespace hosts`);
      d = new Daemon(join(this.dir, `h${n}`), ['--listen-addr', `${host.ip}:${NETNS_PORT}`, ...joining, ...(opts.args ?? [])], { name, binary, netns: { hosts: this.net, host } });
    } else {
      // Its ingress mesh listens on its own address too, so the hosts' published ports do not collide.
      const ip = `127.0.0.${n + 1}`;
      d = new Daemon(join(this.dir, `h${n}`), ['--listen-addr', `${ip}:${freePort(ip)}`, '--mesh-addr', ip, ...joining, ...(opts.args ?? [])], { name, binary });
    }
    d.startTimeoutMs = this.startTimeoutMs;
    this.daemons.push(d);
    await d.start(opts.init ?? false);
    return d;
  }

  /** A daemon made by the test (another start on a member's data dir, say), stopped at dispose. */
  adopt(d: Daemon): Daemon {
    this.daemons.push(d);
    return d;
  }

  /** Read the join tokens from a manager. */
  async tokensOf(manager: Daemon): Promise<{ manager: string; worker: string }> {
    this.tokens = {
      worker: (await manager.ok('cluster', 'join-token', '-q', 'worker')).trim(),
      manager: (await manager.ok('cluster', 'join-token', '-q', 'manager')).trim(),
    };
    return this.tokens;
  }

  /**
   * The first manager makes the cluster; the other managers join with the manager token, the workers
   * with the worker token (named m1…, w1…); then wait until every node is ready and every manager
   * reachable.
   */
  async boot(opts: BootOptions): Promise<Booted> {
    const own = opts.ownBinaries ?? false;
    const first = await this.add({ init: !opts.init, name: 'm1', ownBinary: own });
    if (opts.init) await first.ok('cluster', 'init', ...opts.init);
    const tokens = await this.tokensOf(first);
    const managers = [first];
    const workers: Daemon[] = [];
    for (let i = 2; i <= opts.managers; i++) managers.push(await this.add({ join: [first.addr, tokens.manager], name: `m${i}`, ownBinary: own }));
    for (let i = 1; i <= opts.workers; i++) workers.push(await this.add({ join: [first.addr, tokens.worker], name: `w${i}`, ownBinary: own }));
    const ids = await this.nodeIds([...managers, ...workers]);
    await this.waitReady(managers.length + workers.length, managers.length, opts.readyMs ?? 30_000);
    return { managers, workers, ids };
  }

  /** Each daemon's node id (every host answers /info at once: a manager just joined, from its local state). */
  async nodeIds(daemons: Daemon[] = this.daemons): Promise<Map<Daemon, string>> {
    const ids = new Map<Daemon, string>();
    for (const d of daemons) ids.set(d, await waitFor(`${d.name}'s node id in /info`, async () => (await d.json<any>('/info')).Swarm.NodeID as string, 20_000));
    return ids;
  }

  /**
   * Until `nodes` nodes are all ready and every manager reachable, at least `managers` of them (the
   * automatic manager count may have promoted more), as `via` (default: the first live daemon) sees it.
   */
  async waitReady(nodes: number, managers: number, timeoutMs = 30_000, via?: Daemon): Promise<void> {
    await waitFor(`${nodes} ready nodes, ${managers} reachable managers`, async () => {
      // Without `via`, the first running daemon that answers: a manager may have become a worker.
      const ns = await this.firstAnswer(via ? [via] : this.daemons.filter((d) => d.isRunning), nodesOf);
      const mgrs = ns.filter((n) => n.Spec.Role === 'manager');
      const ok = ns.length === nodes && ns.every((n) => n.Status.State === 'ready') &&
        mgrs.length >= managers && mgrs.every((n) => n.ManagerStatus?.Reachability === 'reachable');
      // Thrown, so that the bound's error shows each node's state as the last answer.
      if (!ok) throw new Error(`${ns.length} nodes: ${ns.map((n) => `${String(n.ID).slice(0, 6)} ${n.Status.State}${n.ManagerStatus ? `/${n.ManagerStatus.Reachability}` : ''}`).join(', ')}`);
      return true;
    }, timeoutMs);
  }

  private async firstAnswer<T>(askers: Daemon[], ask: (d: Daemon) => Promise<T>): Promise<T> {
    let last: unknown = new Error('no daemon is running');
    for (const d of askers) {
      try { return await ask(d); } catch (e) { last = e; }
    }
    throw last;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.disposed) return;
    // In namespace hosts everything is SIGKILLed with the hosts; on loopback each daemon shuts down.
    if (!this.net) await Promise.all(this.daemons.map((d) => d.stop().catch(() => {})));
    this.dispose();
  }

  /** Synchronous (an exit handler can run it): SIGKILL what is left, remove the dirs and hosts. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    live.delete(this);
    for (const d of this.daemons) {
      d.killNow();
      noteDisposed(d);
    }
    try {
      this.net?.dispose();
    } finally {
      killTaskProcesses(this.dir);
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/** The manager that every one of `managers` shows as leader, once they agree. */
export async function leaderOf(managers: Daemon[], ids: Map<Daemon, string>, timeoutMs = 20_000): Promise<Daemon> {
  return waitFor('one leader every manager shows', async () => {
    const views = await Promise.all(managers.map(async (m) => (await nodesOf(m)).find((n) => n.ManagerStatus?.Leader)?.ID));
    if (!views[0] || views.some((v) => v !== views[0])) return null;
    return managers.find((m) => ids.get(m) === views[0]) ?? null;
  }, timeoutMs);
}

