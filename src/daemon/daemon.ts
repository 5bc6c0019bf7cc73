/**
 * The daemon: one object that holds the roles of this host (Nomad's Agent, swarmkit's node).
 * A host is always a worker; it is also a manager while it holds a cluster's state.
 */
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'bun';
import { createApp } from '../api/index.ts';
import type { ApiDeps } from '../api/deps.ts';
import { builtinCatalog, type ExecutorCatalog } from '../executor/catalog.ts';
import { loadExecutors, type LoadReport } from '../executor/loader.ts';
import { errorMessage, UnavailableError } from '../lib/errors.ts';
import { socketPath } from '../lib/paths.ts';
import { API_VERSION, COMMIT, VERSION } from '../lib/version.ts';
import { memoryConnPair } from '../manager/dispatcher/index.ts';
import type { MemoryStore } from '../store/index.ts';
import { Agent } from '../worker/index.ts';
import { currentCluster, initCluster } from './cluster.ts';
import { describeHost } from './describe.ts';
import { startFleetHttp } from './fleet-http.ts';
import { loadOrCreateNodeId } from './identity.ts';
import { lockDataDir } from './lock.ts';
import { Manager } from './manager.ts';
import { type ClusterState, openClusterState } from './state.ts';

export interface DaemonOptions {
  dataDir: string;
  /** Create a cluster when the data dir holds none (a no-op when it does). */
  init: boolean;
  /** Also serve the admin API on TCP (HOST:PORT). */
  tcp?: string;
  /** Leave tasks running when the daemon stops (they are re-attached at the next start). */
  keepTasks: boolean;
  /** Third-party executors are loaded from here at start. Default `<dataDir>/plugins`. */
  pluginDir?: string;
  /** Serve this executable and install.sh over plain HTTP on IP:PORT (fleet boot; off unless given). */
  fleetAddr?: string;
  log?: (msg: string) => void;
}

export interface RunningDaemon {
  readonly socketPath: string;
  readonly nodeId: string;
  /** Settles when the daemon has stopped: resolves after stop(), rejects when it stopped itself on a fatal error. */
  readonly stopped: Promise<void>;
  stop(): Promise<void>;
}

export async function startDaemon(opts: DaemonOptions): Promise<RunningDaemon> {
  const log = opts.log ?? ((msg: string) => console.error(`${new Date().toISOString()} ${msg}`));
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const unlock = lockDataDir(opts.dataDir);
  try {
    return await Daemon.start(opts, log, unlock);
  } catch (e) {
    unlock();
    throw e;
  }
}

class Daemon implements RunningDaemon {
  readonly socketPath: string;
  private manager: Manager | null = null;
  private agent: Agent | null = null;
  private servers: Server<unknown>[] = [];
  private stopping: Promise<void> | null = null;
  private fatal: Error | null = null;
  private settleStopped!: { resolve: () => void; reject: (e: Error) => void };
  readonly stopped = new Promise<void>((resolve, reject) => {
    this.settleStopped = { resolve, reject };
  });
  private readonly store: MemoryStore;

  private constructor(
    private readonly opts: DaemonOptions,
    private readonly log: (msg: string) => void,
    private readonly unlock: () => void,
    readonly nodeId: string,
    private readonly state: ClusterState,
    private readonly catalog: ExecutorCatalog,
    private readonly plugins: LoadReport,
  ) {
    this.socketPath = socketPath(opts.dataDir);
    this.store = state.store;
    this.stopped.catch(() => {}); // a fatal stop is reported to whoever awaits `stopped`, never unhandled
  }

  static async start(opts: DaemonOptions, log: (msg: string) => void, unlock: () => void): Promise<Daemon> {
    const t0 = performance.now();
    const nodeId = loadOrCreateNodeId(opts.dataDir);
    const catalog = builtinCatalog();
    // Never fatal: a broken plugin is logged, reported by `shoal plugin ls`, and skipped.
    const plugins = await loadExecutors(opts.pluginDir ?? join(opts.dataDir, 'plugins'), catalog, log);
    let d: Daemon | null = null;
    const state = await openClusterState({
      dataDir: opts.dataDir,
      nodeId,
      onFatal: (err) => {
        log(`raft log failed: ${err.message}; the daemon stops (its tasks keep running and are re-attached at the next start)`);
        if (d) d.fail(err);
      },
    });
    d = new Daemon(opts, log, unlock, nodeId, state, catalog, plugins);
    try {
      if (!currentCluster(d.store) && opts.init) await d.initCluster({});
      else if (currentCluster(d.store)) await d.startRoles();
      d.serve();
    } catch (e) {
      await d.stop();
      throw e;
    }
    const store = d.store;
    log(`shoal ${VERSION} node ${nodeId}: ${currentCluster(store) ? 'manager and worker' : 'not in a cluster yet ("shoal cluster init")'}; raft log at index ${d.state.raft.status.applied}; API on unix://${d.socketPath} (ready in ${Math.round(performance.now() - t0)} ms)`);
    return d;
  }

  /** The state under the daemon is gone (the raft host halted): stop, keeping the tasks for the next start. */
  private fail(err: Error): void {
    this.fatal ??= err;
    void this.stop();
  }

  private async initCluster(req: { AdvertiseAddr?: string; ListenAddr?: string; Spec?: object }): Promise<string> {
    // No runtimes yet: the node is not ready until its agent registers, with fresh fingerprints
    // (a Docker Engine or a KVM probe can take 100+ ms: not on the way to a ready API).
    await initCluster(this.store, this.nodeId, describeHost([]), req.Spec, req.AdvertiseAddr);
    await this.startRoles();
    return this.nodeId;
  }

  /** Manager stages, then the worker agent connected to this host's own dispatcher. */
  private async startRoles(): Promise<void> {
    this.manager = new Manager(this.store, this.log);
    await this.manager.start();
    const dispatcher = this.manager.dispatcher;
    this.agent = new Agent({
      nodeId: this.nodeId,
      dataDir: this.opts.dataDir,
      catalog: this.catalog,
      // Even inside one process, assignments and status travel as msgpack frames.
      connect: async () => {
        const [workerEnd, managerEnd] = memoryConnPair();
        dispatcher.accept(managerEnd);
        return workerEnd;
      },
      description: () => describeHost([]),
      log: this.log,
    });
    await this.agent.start();
  }

  private apiDeps(): ApiDeps {
    return {
      store: this.store,
      nodeId: () => (currentCluster(this.store) ? this.nodeId : null),
      initCluster: (req) => this.initCluster(req),
      validateTaskSpec: (spec) => {
        const runtime = spec.Runtime ?? (spec.ContainerSpec ? 'container' : 'process');
        if (!this.catalog.has(runtime)) return `TaskTemplate.Runtime: unknown runtime "${runtime}" (this node has: ${this.catalog.names().join(', ')})`;
        return this.catalog.get(runtime).validate(spec);
      },
      taskLogs: (task, o) => {
        if (!this.manager) throw new UnavailableError('this node is not a manager');
        return this.manager.dispatcher.taskLogs(task.ID, { follow: o.follow, since: o.since, tail: o.tail, signal: o.signal });
      },
      plugins: () => this.plugins,
      version: { Version: VERSION, ApiVersion: API_VERSION, GitCommit: COMMIT, Os: platform(), Arch: arch() === 'x64' ? 'amd64' : arch() },
    };
  }

  private serve(): void {
    const app = createApp(this.apiDeps());
    rmSync(this.socketPath, { force: true });
    this.servers.push(Bun.serve({ unix: this.socketPath, fetch: (req: Request) => app.fetch(req) }));
    chmodSync(this.socketPath, 0o600);
    if (this.opts.tcp) {
      const m = /^(.*):(\d+)$/.exec(this.opts.tcp);
      if (!m) throw new UnavailableError(`--listen-tcp "${this.opts.tcp}": expected HOST:PORT`);
      this.servers.push(Bun.serve({ hostname: m[1] || '127.0.0.1', port: Number(m[2]), fetch: (req: Request) => app.fetch(req), idleTimeout: 0 }));
    }
    if (this.opts.fleetAddr) this.servers.push(startFleetHttp(this.opts.fleetAddr, this.log));
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    for (const s of this.servers) s.stop(true);
    try {
      await this.agent?.stop({ keepTasks: this.opts.keepTasks || this.fatal !== null });
    } catch (e) {
      this.log(`worker stop: ${errorMessage(e)}`);
    }
    try {
      await this.manager?.stop();
    } catch (e) {
      this.log(`manager stop: ${errorMessage(e)}`);
    }
    this.state.close();
    rmSync(this.socketPath, { force: true });
    this.unlock();
    if (this.fatal) this.settleStopped.reject(this.fatal);
    else this.settleStopped.resolve();
  }
}
