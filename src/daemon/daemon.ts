/**
 * The daemon: the composition root of one host (Nomad's Agent, swarmkit's node). It opens the
 * cluster state, makes the parts, and starts and stops them in order (see start() and doStop()).
 *
 *   roles/worker.ts    every host in a cluster: the worker agent and this host's networking
 *   roles/manager.ts   a manager as well: the leader-only stages, the CA, the manager protocols
 *   api-server.ts      the admin API (unix socket; TCP when asked); fleet-http.ts  --fleet-addr
 *   net-service.ts     identity and the libp2p listener, in the background after the API
 *   renewal.ts         certificate renewal, once the network is up
 *   roles/changes.ts   init, join, leave, promotion, demotion, checked by roles/role-machine.ts
 *
 * Each part is a Service (src/lib/lifecycle.ts); what they share is the DaemonContext (context.ts).
 */
import { existsSync, rmSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { builtinCatalog, type ExecutorCatalog } from '../executor/catalog.ts';
import { loadExecutors, type LoadReport } from '../executor/loader.ts';
import { ConflictError, InvalidArgumentError } from '../lib/errors.ts';
import { ensurePrivateDir, socketPath } from '../lib/paths.ts';
import { VERSION } from '../lib/version.ts';
import { MemoryStore } from '../store/index.ts';
import { addrsOf } from './addrs.ts';
import { apiDeps } from './api-deps.ts';
import { ApiServer } from './api-server.ts';
import type { ClusterNet } from './cluster-net.ts';
import { DaemonContext } from './context.ts';
import { dispatcherLink } from './dispatcher-link.ts';
import { FleetHttp } from './fleet-http.ts';
import { checkForceNewCluster, FORCE_RECORD_FILE, loadForceRecord, settleForce } from './force-new-cluster.ts';
import { DaemonHandle } from './handle.ts';
import { loadOrCreateNodeId } from './identity.ts';
import { joinCluster } from './join.ts';
import { AtRestKeys, DEK_FILE } from './keys-at-rest.ts';
import { LockedDaemon } from './locked.ts';
import { lockDataDir } from './lock.ts';
import { loadMembership, rememberAddrs } from './membership.ts';
import type { DaemonOptions, Log, RunningDaemon } from './options.ts';
import { RoleChanges } from './roles/changes.ts';
import { WorkerRole } from './roles/worker.ts';
import { NetService } from './net-service.ts';
import { CertRenewal } from './renewal.ts';
import { idleShrinker } from './shrink.ts';
import { ceilingBytes, memoryCeiling } from './memory-ceiling.ts';
import { workerTlsSource } from './worker-tls.ts';
import type { ClusterSpec } from '../types/index.ts';
import { DaemonUpgrade, reexec, reexecArgs, runningExecutable } from './upgrade/index.ts';
import type { ClusterState } from './state.ts';

export type { DaemonOptions, RunningDaemon } from './options.ts';

export async function startDaemon(opts: DaemonOptions): Promise<RunningDaemon> {
  const log = opts.log ?? ((msg: string) => console.error(`${new Date().toISOString()} ${msg}`));
  // A bad backup or a data dir it may not go into is refused before anything is written there.
  // restore.ts (with the raft log's writer) is imported only for a --restore: most starts, and every worker's, have none.
  if (opts.restore) opts = { ...opts, restored: (await import('./restore.ts')).prepareRestore(opts.dataDir, opts.restore, !!opts.forceNewCluster) };
  ensurePrivateDir(opts.dataDir);
  const unlock = lockDataDir(opts.dataDir);
  const handle = new DaemonHandle(startLockedOrNot, log, unlock);
  try {
    await handle.boot(opts);
  } catch (e) {
    unlock();
    throw e;
  }
  return handle;
}

/**
 * A manager whose keys autolock sealed starts locked (only `swarm unlock` served) unless the key
 * came with it (the start after an unlock). Workers are never locked.
 */
async function startLockedOrNot(opts: DaemonOptions, log: Log, restartAs: (next: DaemonOptions) => Promise<void>): Promise<RunningDaemon> {
  if (loadMembership(opts.dataDir)?.Role !== 'worker') {
    const keys = AtRestKeys.read(opts.dataDir);
    if (keys.locked && opts.unlockKey) {
      try {
        keys.unlock(opts.unlockKey);
      } catch {
        // The key rotated since it was given: ask for the current one.
      }
    }
    if (keys.locked) return LockedDaemon.start({ ...opts, unlockKey: undefined }, log, keys, restartAs);
  }
  return Daemon.start(opts, log, restartAs);
}

/** A worker holds no cluster state: its store stays empty and the API sends it to the managers. */
function workerState(): ClusterState {
  return { store: new MemoryStore(), raft: null as never, transport: null as never, close: () => {} };
}

class Daemon implements RunningDaemon {
  readonly socketPath: string;
  private readonly api: ApiServer;
  private readonly fleet: FleetHttp | null;
  private readonly net: NetService;
  private readonly renewal: CertRenewal;
  private readonly changes: RoleChanges;
  private readonly upgrade: DaemonUpgrade;
  /** Gives back the memory of a start once it is over (shrink.ts). */
  private readonly shrinker = idleShrinker();
  /** Stops the full collections run when the RSS goes over its ceiling (memory-ceiling.ts); set once started. */
  private stopCeiling: (() => void) | null = null;
  /** Stopping to run the executable again in this process (an upgrade swapped it): tasks are kept. */
  private reexecing = false;
  private stopping: Promise<void> | null = null;
  private fatal: Error | null = null;
  private settleStopped!: { resolve: () => void; reject: (e: Error) => void };
  readonly stopped = new Promise<void>((resolve, reject) => {
    this.settleStopped = { resolve, reject };
  });

  private constructor(readonly ctx: DaemonContext, private readonly catalog: ExecutorCatalog, plugins: LoadReport, restartAs: (next: DaemonOptions) => Promise<void>) {
    this.stopped.catch(() => {}); // a fatal stop is reported to whoever awaits `stopped`, never unhandled
    this.socketPath = socketPath(ctx.opts.dataDir);
    this.renewal = new CertRenewal(ctx);
    this.upgrade = new DaemonUpgrade(ctx, () => {
      this.reexecing = true;
      void this.stop();
    });
    this.net = new NetService(ctx, async (net, membership) => {
      if (membership.Role === 'manager') await ctx.manager?.serveOn(net, membership);
      await this.upgrade.serveOn(net);
      await this.startGossip();
      void this.renewal.start();
      this.shrinker.settled();
    });
    this.changes = new RoleChanges(ctx, { startRoles: () => this.startRoles(), startNet: () => this.net.start(), restartAs, stop: () => this.stop() });
    const tcp = ctx.opts.tcp ? {
      addr: ctx.opts.tcp, store: ctx.store, nodeId: ctx.nodeId, role: () => ctx.role, identityReady: () => this.net.ready(), log: ctx.log,
    } : undefined;
    const metricsTcp = ctx.opts.metricsAddr ? {
      addr: ctx.opts.metricsAddr, store: ctx.store, nodeId: ctx.nodeId, role: () => ctx.role, identityReady: () => this.net.ready(), log: ctx.log,
      worker: workerTlsSource(ctx),
    } : undefined;
    this.api = new ApiServer({ socketPath: this.socketPath, tcp, metricsTcp, deps: apiDeps(ctx, { net: this.net, changes: this.changes, catalog, plugins, upgrade: this.upgrade.api() }) });
    this.fleet = ctx.opts.fleetAddr ? new FleetHttp(ctx.opts.fleetAddr, ctx.log) : null;
  }

  get nodeId(): string {
    return this.ctx.nodeId;
  }

  static async start(opts: DaemonOptions, log: Log, restartAs: (next: DaemonOptions) => Promise<void>): Promise<Daemon> {
    const t0 = performance.now();
    const ceiling = ceilingBytes(process.env, totalmem());
    let nodeId = loadOrCreateNodeId(opts.dataDir);
    let membership = loadMembership(opts.dataDir);
    const addrs = addrsOf(rememberAddrs(opts.dataDir, opts));
    let net: ClusterNet | null = null;
    if (opts.join && membership) {
      log(`this node is already a ${membership.Role} of cluster ${membership.ClusterID}; --join ignored (it resumes its membership)`);
    } else if (opts.join) {
      if (!opts.token) throw new InvalidArgumentError('--join needs --token: get one with "shoal cluster join-token worker|manager" on a manager');
      if (existsSync(join(opts.dataDir, 'raft'))) {
        throw new ConflictError(`${opts.dataDir} already holds cluster state from an earlier start; to join another cluster use a fresh --data-dir (or remove ${join(opts.dataDir, 'raft')})`);
      }
      ({ net, membership, nodeId } = await joinCluster({ dataDir: opts.dataDir, join: opts.join, token: opts.token }, addrs, log));
    }
    // The native process shim is compiled into the data dir (a few hundred KiB; once per version).
    const catalog = builtinCatalog({ nodeId, log }, { nativeShimDir: join(opts.dataDir, 'bin'), log });
    // Never fatal: a broken plugin is logged, reported by `shoal plugin ls`, and skipped.
    const plugins = await loadExecutors(opts.pluginDir ?? join(opts.dataDir, 'plugins'), catalog, log);
    // A manager's raft log is sealed with its data key (encryption at rest); unlocked by now.
    const atRest = membership?.Role === 'worker' ? null : AtRestKeys.read(opts.dataDir);
    if (atRest?.locked) atRest.unlock(opts.unlockKey ?? '');
    if (opts.restored) {
      // A restore goes only into a manager's or an empty data dir (restore.ts): atRest is there.
      const setAside = (await import('./restore.ts')).seedRestoredLog(opts.dataDir, nodeId, opts.restored, atRest!.dataKey());
      if (setAside) log(`--restore: the raft log this data dir held is kept in ${setAside}`);
    }
    // A restored log has this node as its only voter already: nothing to force.
    const force = !!opts.forceNewCluster && !opts.restored;
    if (force) checkForceNewCluster(membership?.Role ?? null, existsSync(join(opts.dataDir, 'raft')), opts.dataDir);
    const forcedBefore = force ? loadForceRecord(opts.dataDir) : null;
    let d: Daemon | null = null;
    const state = membership?.Role === 'worker'
      ? workerState()
      // The raft host and the manager's stages are loaded only on a manager: an idle worker never evaluates them.
      : await (await import('./state.ts')).openClusterState({
        dataDir: opts.dataDir,
        nodeId,
        joined: membership?.Joined,
        forceNewCluster: force,
        forcedBefore: forcedBefore ?? undefined,
        dataKey: atRest!.dataKey(),
        observer: { roleChanged: () => void d?.ctx.manager?.leader.update() },
        log,
        onFatal: (err) => {
          log(`raft log failed: ${err.message}; the daemon stops (its tasks keep running and are re-attached at the next start)`);
          if (d) d.fail(err);
        },
      });
    const ctx = new DaemonContext(opts, log, nodeId, state, membership, addrs);
    ctx.net = net;
    ctx.atRest = atRest;
    d = new Daemon(ctx, catalog, plugins, restartAs);
    try {
      if (opts.externalCaUrl && opts.externalCa) throw new InvalidArgumentError('--external-ca-url and --external-ca: give one (a cfssl server holding the root key, or the root\'s certificate and key here)');
      if (!ctx.role && opts.init && opts.externalCa) {
        // Checked now, not in the background: a bad CA must stop the start, not leave a cluster without one.
        await (await import('./ca-service.ts')).loadExternalCA(opts.externalCa);
      }
      if (force && state.raft.forced) log(await settleForce(ctx.store, opts.dataDir, nodeId, state.raft.forced, forcedBefore));
      if (opts.restored) log(await (await import('./restore.ts')).settleRestore(ctx.store, opts.dataDir, nodeId, ctx.advertised, opts.restored));
      if (!ctx.role && opts.init) await d.changes.init(opts.externalCaUrl ? { Spec: { CAConfig: { ExternalCAs: [{ Protocol: 'cfssl', URL: opts.externalCaUrl }] } as ClusterSpec['CAConfig'] } } : {});
      else if (ctx.role) await d.startRoles();
      await d.api.start();
      await d.fleet?.start();
    } catch (e) {
      await d.stop();
      throw e;
    }
    if (ctx.role) await d.net.start();
    const role = ctx.role === 'worker' ? 'worker' : ctx.role ? 'manager and worker' : 'not in a cluster yet ("shoal cluster init")';
    const raftAt = state.raft ? `; raft log at index ${state.raft.status.applied}` : '';
    log(`shoal ${VERSION} node ${nodeId}: ${role}${raftAt}; API on unix://${d.socketPath} (ready in ${Math.round(performance.now() - t0)} ms)`);
    d.shrinker.settled();
    const ceilingCheck = memoryCeiling({
      ceilingBytes: ceiling,
      onCollect: (before, after) => log(`memory: RSS ${mib(before)} MiB over the ceiling of ${mib(ceiling)} MiB; a full collection left ${mib(after)} MiB`),
    });
    // Checked after applied entries too (at most every 10 ms): a leader in a burst of placements ran
    // its timers only every 0.3-0.9 s, and its RSS grew by up to 70 MiB in 150 ms (docs/scale.md, stop 34).
    // With no ceiling, nothing watches the store's changes.
    const unwatch = ceiling > 0 ? ctx.store.watch((ev) => {
      if (ev.kind === 'commit') ceilingCheck.poke();
    }) : () => {};
    d.stopCeiling = () => {
      unwatch();
      ceilingCheck.stop();
    };
    return d;
  }

  /** The roles this host holds: a manager (started first) is a worker too. */
  private async startRoles(): Promise<void> {
    const ctx = this.ctx;
    if (ctx.role === 'manager') {
      const { ManagerRole } = await import('./roles/manager.ts');
      ctx.manager = new ManagerRole({
        state: ctx.state, nodeId: ctx.nodeId, log: ctx.log, atRest: ctx.atRest,
        managers: () => ctx.managerAddrs(),
        onDemoted: () => void this.changes.confirmDemotion(),
        leaderStages: () => [this.upgrade.driver()],
      });
      await ctx.manager.start();
    }
    ctx.worker = new WorkerRole({
      nodeId: ctx.nodeId, dataDir: ctx.opts.dataDir, catalog: this.catalog, log: ctx.log,
      meshAddr: ctx.opts.meshAddr,
      wantRevocations: !!ctx.opts.metricsAddr,
      underlay: () => ctx.addrs.advertise.host,
      connect: dispatcherLink(ctx),
      onRole: (role) => {
        if (role === 'manager' && ctx.membership?.Role === 'worker') this.changes.promote();
        if (role === 'worker' && ctx.role === 'manager') void this.changes.confirmDemotion(true);
      },
      onCA: (epoch) => {
        if (ctx.net?.caEpoch && epoch !== ctx.net.caEpoch) this.renewal.renewSoon(`the cluster's roots changed (${epoch.slice(0, 12)}…): a root rotation`);
      },
      keepTasks: () => ctx.opts.keepTasks || ctx.roles.is('restarting') || this.reexecing || this.fatal !== null,
    });
    await ctx.worker.start();
    await this.startGossip();
  }

  /** Gossip needs both the cluster network and the worker's host networking: started when the later is up. */
  private async startGossip(): Promise<void> {
    const { worker, net, membership } = this.ctx;
    if (worker && net?.identity && membership) await worker.startGossip(net, membership.Role);
  }

  /** The state under the daemon is gone (the raft host halted): stop, keeping the tasks for the next start. */
  private fail(err: Error): void {
    this.fatal ??= err;
    void this.stop();
  }

  stop(): Promise<void> {
    this.ctx.stopping = true;
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const ctx = this.ctx;
    this.shrinker.stop();
    this.stopCeiling?.();
    await this.renewal.stop();
    await this.api.stop();
    await this.fleet?.stop();
    await ctx.worker?.stop();
    await ctx.manager?.stop();
    await this.net.stop();
    ctx.state.close();
    this.api.removeSocket();
    if (ctx.roles.is('leaving')) {
      // The host is in no cluster any more: a new start makes or joins one as a new node.
      for (const f of ['cluster.json', 'node.json', 'node.key', DEK_FILE, 'raft', FORCE_RECORD_FILE]) rmSync(join(ctx.opts.dataDir, f), { recursive: true, force: true });
    }
    // Before a join (or as a promoted manager): the raft log here is of another time; the new node starts its own.
    if (ctx.roles.is('joining', 'restarting')) {
      for (const f of ['raft', FORCE_RECORD_FILE]) rmSync(join(ctx.opts.dataDir, f), { recursive: true, force: true });
    }
    if (this.reexecing && !this.fatal) {
      // Same pid, same arguments, the new executable: whoever supervises the daemon keeps holding it.
      ctx.log(`upgrade: starting again from ${runningExecutable()}`);
      await reexec(runningExecutable(), reexecArgs(process.argv.slice(2))).catch((err: Error) => {
        this.fatal = err;
      });
    }
    if (this.fatal) this.settleStopped.reject(this.fatal);
    else this.settleStopped.resolve();
  }
}

function mib(bytes: number): number {
  return Math.round(bytes / 2 ** 20);
}
