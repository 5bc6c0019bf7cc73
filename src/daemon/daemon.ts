/**
 * The daemon: one object that holds the roles of this host (Nomad's Agent, swarmkit's node).
 * A host is always a worker. A manager also holds the cluster's state on a raft log, and runs the
 * manager stages while it leads. Between hosts everything goes over one libp2p listener
 * (cluster-net.ts), brought up in the background so that the API is ready first.
 */
import { chmodSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { isIP } from 'node:net';
import { arch, networkInterfaces, platform } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'bun';
import { createApp } from '../api/index.ts';
import type { ApiDeps, InitRequest, JoinRequestBody } from '../api/deps.ts';
import { builtinCatalog, type ExecutorCatalog } from '../executor/catalog.ts';
import { loadExecutors, type LoadReport } from '../executor/loader.ts';
import { ConflictError, errorMessage, InvalidArgumentError, ShoalError, UnavailableError } from '../lib/errors.ts';
import { type AdminTcp, startAdminTcp } from './admin-tcp.ts';
import { ensurePrivateDir, socketPath } from '../lib/paths.ts';
import { API_VERSION, COMMIT, VERSION } from '../lib/version.ts';
import { memoryConnPair } from '../manager/dispatcher/index.ts';
import { MemoryStore } from '../store/index.ts';
import type { NodeRole } from '../types/index.ts';
import { Agent } from '../worker/index.ts';
import { HostNet } from './host-net.ts';
import { currentCluster, initCluster } from './cluster.ts';
import type { ClusterNet } from './cluster-net.ts';
import { describeHost } from './describe.ts';
import { checkForceNewCluster, FORCE_RECORD_FILE, loadForceRecord, settleForce } from './force-new-cluster.ts';
import { startFleetHttp } from './fleet-http.ts';
import { loadOrCreateNodeId } from './identity.ts';
import { LeaderRole } from './leadership.ts';
import { lockDataDir } from './lock.ts';
import { formatHostPort, type HostPort, loadMembership, type Membership, parseHostPort, rememberAddrs, saveMembership, saveNodeId } from './membership.ts';
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
  /** The libp2p listener, IP:PORT (default 0.0.0.0:4242). */
  listenAddr?: string;
  /** Where other nodes reach this one, IP:PORT (default: the listen address, or this host's first IPv4 address). */
  advertiseAddr?: string;
  /** Join the cluster of the manager at this IP:PORT with `token`, unless this data dir is in one already. */
  join?: string;
  token?: string;
  /** `cert.pem,key.pem` of an external root CA for a new cluster. */
  externalCa?: string;
  /** The address the ingress mesh binds published ports on (default all: 0.0.0.0). */
  meshAddr?: string;
  /** A surviving manager after a lost quorum: recover a one-manager cluster from its own log (force-new-cluster.ts). */
  forceNewCluster?: boolean;
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
  ensurePrivateDir(opts.dataDir);
  const unlock = lockDataDir(opts.dataDir);
  const handle = new DaemonHandle(log, unlock);
  try {
    await handle.boot(opts);
  } catch (e) {
    unlock();
    throw e;
  }
  return handle;
}

/**
 * What the `daemon` command holds: the running Daemon, which a join through the API replaces with
 * a new one on the same data dir (new node id, new role), as a restart would.
 */
class DaemonHandle implements RunningDaemon {
  #current!: Daemon;
  #settle!: { resolve: () => void; reject: (e: Error) => void };
  readonly stopped = new Promise<void>((resolve, reject) => {
    this.#settle = { resolve, reject };
  });

  constructor(private readonly log: (msg: string) => void, private readonly unlock: () => void) {
    this.stopped.catch(() => {});
  }

  get socketPath(): string { return this.#current.socketPath; }
  get nodeId(): string { return this.#current.nodeId; }

  async boot(opts: DaemonOptions): Promise<void> {
    const d = await Daemon.start(opts, this.log, (next) => this.#restart(d, next));
    this.#current = d;
    d.stopped.then(() => {
      if (this.#current !== d) return; // replaced: the next one settles the handle
      this.unlock();
      this.#settle.resolve();
    }, (err: Error) => {
      if (this.#current !== d) return;
      this.unlock();
      this.#settle.reject(err);
    });
  }

  async #restart(old: Daemon, next: DaemonOptions): Promise<void> {
    const placeholder = old;
    this.#current = null as unknown as Daemon; // `old` stopping must not settle the handle
    await placeholder.stop();
    try {
      await this.boot({ ...next, forceNewCluster: false }); // done once: the log holds it now
    } catch (err) {
      this.log(`starting again after the join failed: ${errorMessage(err)}`);
      this.unlock();
      this.#settle.reject(err as Error);
    }
  }

  stop(): Promise<void> {
    return this.#current ? this.#current.stop().then(() => this.stopped) : this.stopped;
  }
}

interface Addrs { listen: HostPort; advertise: HostPort }

/**
 * How long after the API is up the CA and libp2p start (CPU-bound: module load, key generation): the
 * first CLI requests, which usually follow a start at once, are not queued behind them.
 */
const NET_START_DELAY_MS = 100;

function addrsOf(opts: { listenAddr?: string; advertiseAddr?: string }): Addrs {
  const listen = parseHostPort('--listen-addr', opts.listenAddr ?? '0.0.0.0');
  const advertise = opts.advertiseAddr
    ? parseHostPort('--advertise-addr', opts.advertiseAddr, listen.host === '0.0.0.0' ? firstAddress() : listen.host)
    : { host: listen.host === '0.0.0.0' || listen.host === '::' ? firstAddress() : listen.host, port: listen.port };
  return { listen, advertise };
}

/** This host's first non-loopback IPv4 address, else 127.0.0.1 (as Docker picks one when it can). */
function firstAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/** A worker holds no cluster state: its store stays empty and the API sends it to the managers. */
function workerState(): ClusterState {
  return { store: new MemoryStore(), raft: null as never, transport: null as never, close: () => {} };
}

class Daemon implements RunningDaemon {
  readonly socketPath: string;
  private leader: LeaderRole | null = null;
  private agent: Agent | null = null;
  /** The ingress mesh, the overlay networks of this host's tasks, and host announcements over gossip. */
  private hostNet: HostNet | null = null;
  private net: ClusterNet | null = null;
  private netStarting: Promise<void> | null = null;
  private servers: Server<unknown>[] = [];
  private adminTcp: AdminTcp | null = null;
  private stopping: Promise<void> | null = null;
  private fatal: Error | null = null;
  private dialTurn = 0;
  private demoting: Promise<void> | null = null;
  private unwatchMembership: (() => void) | null = null;
  private leaving = false;
  private rejoining = false;
  private promoting: Promise<void> | null = null;
  private confirming = false;
  private keepTasksOnStop = false;
  private renewTimer: ReturnType<typeof setTimeout> | undefined;
  private ca: import('./ca-service.ts').ClusterCA | null = null;
  private settleStopped!: { resolve: () => void; reject: (e: Error) => void };
  readonly stopped = new Promise<void>((resolve, reject) => {
    this.settleStopped = { resolve, reject };
  });
  private readonly store: MemoryStore;

  private constructor(
    private readonly opts: DaemonOptions,
    private readonly log: (msg: string) => void,
    private readonly restartAs: (next: DaemonOptions) => Promise<void>,
    readonly nodeId: string,
    private readonly state: ClusterState,
    private readonly catalog: ExecutorCatalog,
    private readonly plugins: LoadReport,
    private membership: Membership | null,
    private addrs: Addrs,
  ) {
    this.socketPath = socketPath(opts.dataDir);
    this.store = state.store;
    this.stopped.catch(() => {}); // a fatal stop is reported to whoever awaits `stopped`, never unhandled
  }

  private get role(): NodeRole | null {
    return this.membership?.Role ?? (currentCluster(this.store) ? 'manager' : null);
  }

  static async start(opts: DaemonOptions, log: (msg: string) => void, restartAs: (next: DaemonOptions) => Promise<void>): Promise<Daemon> {
    const t0 = performance.now();
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
      ({ net, membership, nodeId } = await joinAtStart(opts, addrs, log));
    }
    const catalog = builtinCatalog();
    // Never fatal: a broken plugin is logged, reported by `shoal plugin ls`, and skipped.
    const plugins = await loadExecutors(opts.pluginDir ?? join(opts.dataDir, 'plugins'), catalog, log);
    if (opts.forceNewCluster) checkForceNewCluster(membership?.Role ?? null, existsSync(join(opts.dataDir, 'raft')), opts.dataDir);
    const forcedBefore = opts.forceNewCluster ? loadForceRecord(opts.dataDir) : null;
    let d: Daemon | null = null;
    const state = membership?.Role === 'worker'
      ? workerState()
      : await openClusterState({
        dataDir: opts.dataDir,
        nodeId,
        joined: membership?.Joined,
        forceNewCluster: opts.forceNewCluster,
        forcedBefore: forcedBefore ?? undefined,
        observer: { roleChanged: () => void d?.leader?.update() },
        onFatal: (err) => {
          log(`raft log failed: ${err.message}; the daemon stops (its tasks keep running and are re-attached at the next start)`);
          if (d) d.fail(err);
        },
      });
    d = new Daemon(opts, log, restartAs, nodeId, state, catalog, plugins, membership, addrs);
    d.net = net;
    try {
      if (!d.role && opts.init && opts.externalCa) {
        // Checked now, not in the background: a bad CA must stop the start, not leave a cluster without one.
        await (await import('./ca-service.ts')).loadExternalCA(opts.externalCa);
      }
      if (opts.forceNewCluster && state.raft.forced) log(await settleForce(d.store, opts.dataDir, nodeId, state.raft.forced, forcedBefore));
      if (!d.role && opts.init) await d.initCluster({});
      else if (d.role) await d.startRoles();
      d.serve();
    } catch (e) {
      await d.stop();
      throw e;
    }
    if (d.role) d.scheduleNet();
    const role = d.role === 'worker' ? 'worker' : d.role ? 'manager and worker' : 'not in a cluster yet ("shoal cluster init")';
    const raftAt = d.state.raft ? `; raft log at index ${d.state.raft.status.applied}` : '';
    log(`shoal ${VERSION} node ${nodeId}: ${role}${raftAt}; API on unix://${d.socketPath} (ready in ${Math.round(performance.now() - t0)} ms)`);
    return d;
  }

  /** The state under the daemon is gone (the raft host halted): stop, keeping the tasks for the next start. */
  private fail(err: Error): void {
    this.fatal ??= err;
    void this.stop();
  }

  private async initCluster(req: InitRequest): Promise<string> {
    if (this.role) throw new ConflictError(`this node is already a ${this.role} of a cluster; "shoal cluster leave" first to make a new one`);
    if (req.ListenAddr || req.AdvertiseAddr) {
      const given = rememberAddrs(this.opts.dataDir, {});
      this.addrs = addrsOf(rememberAddrs(this.opts.dataDir, { listenAddr: req.ListenAddr ?? this.opts.listenAddr ?? given.listenAddr, advertiseAddr: req.AdvertiseAddr ?? this.opts.advertiseAddr ?? given.advertiseAddr }));
    }
    // No runtimes yet: the node is not ready until its agent registers, with fresh fingerprints
    // (a Docker Engine or a KVM probe can take 100+ ms: not on the way to a ready API).
    // The root CA, the tokens and this node's certificate follow in the background (ensureIdentity):
    // x509 and key generation cost more than the rest of a start, and nothing local needs them.
    await initCluster(this.store, this.nodeId, describeHost([]), req.Spec, formatHostPort(this.addrs.advertise));
    await this.startRoles();
    this.scheduleNet();
    return this.nodeId;
  }

  /**
   * A cluster made here without a root CA gets one (and tokens), and this first manager its
   * certificate and cluster.json. Runs before the network comes up; GET /swarm waits for it.
   */
  private async ensureIdentity(): Promise<Membership> {
    if (this.membership) return this.membership;
    const cluster = currentCluster(this.store);
    if (!cluster) throw new UnavailableError('this node is not in a cluster');
    const [{ makeClusterIdentity, recordTlsInfo }, { loadOrCreateNodeKey }] = await Promise.all([import('./ca-service.ts'), import('../net/identity.ts')]);
    const key = await loadOrCreateNodeKey(this.opts.dataDir);
    const { identity, membership, tlsInfo } = await makeClusterIdentity(cluster, this.nodeId, key.publicKey.raw, this.opts.externalCa);
    if (!cluster.RootCA) {
      await this.store.update((tx) => {
        const c = tx.get('clusters', cluster.ID);
        if (c && !c.RootCA) tx.update('clusters', { ...c, RootCA: identity.RootCA, JoinTokens: identity.JoinTokens });
      });
    }
    await recordTlsInfo(this.store, this.nodeId, tlsInfo);
    saveMembership(this.opts.dataDir, membership);
    this.membership = membership;
    return membership;
  }

  /** Manager: the leader-only stages (started when this node leads). Every host: the worker agent. */
  private async startRoles(): Promise<void> {
    if (this.role === 'manager') {
      this.leader = new LeaderRole({
        store: this.store, raft: this.state.raft, selfId: this.nodeId, log: this.log,
        managers: () => this.managerAddrs(),
      });
      await this.leader.update();
    }
    if (this.opts.meshAddr !== undefined && !isIP(this.opts.meshAddr)) {
      throw new InvalidArgumentError(`--mesh-addr "${this.opts.meshAddr}": expected an IP address of this host, such as 0.0.0.0 (all) or 10.0.0.5`);
    }
    // Every host routes every published port (the mesh); tasks there are reached at its mesh address.
    const meshAddr = this.opts.meshAddr && this.opts.meshAddr !== '0.0.0.0' ? this.opts.meshAddr : this.addrs.advertise.host;
    this.hostNet = new HostNet({ nodeId: this.nodeId, dataDir: this.opts.dataDir, meshBind: this.opts.meshAddr ?? '0.0.0.0', underlay: () => this.addrs.advertise.host, log: this.log });
    this.agent = new Agent({
      nodeId: this.nodeId,
      dataDir: this.opts.dataDir,
      catalog: this.catalog,
      connect: (signal) => this.connectDispatcher(signal),
      description: () => ({ ...describeHost([]), Addr: meshAddr }),
      nodeAddr: meshAddr,
      ...this.hostNet.agentHooks(),
      onRole: (role) => {
        this.hostNet?.setRole(role);
        if (role === 'manager' && this.membership?.Role === 'worker') void this.becomeManager();
      },
      log: this.log,
    });
    await this.agent.start();
    await this.startGossip();
  }

  /** Gossip needs both the cluster network and the host's networking: started when the later is up. */
  private async startGossip(): Promise<void> {
    if (this.hostNet && this.net?.identity && this.membership) await this.hostNet.startGossip(this.net, this.membership.Role);
  }

  /**
   * The worker session's transport: this host's own dispatcher while it leads (msgpack frames over
   * an in-process pair), else a libp2p stream to the managers, leader first, in turns.
   */
  private async connectDispatcher(signal: AbortSignal) {
    const local = this.leader?.manager?.dispatcher;
    if (local) {
      const [workerEnd, managerEnd] = memoryConnPair();
      local.accept(managerEnd, { nodeId: this.nodeId });
      return workerEnd;
    }
    if (!this.net?.identity) throw new UnavailableError('the cluster network is not up yet');
    this.rememberManagers(this.agent?.session.managers ?? []);
    const known = [...new Set([...this.managerAddrs(), ...(this.agent?.session.managers ?? []), ...(this.membership?.Managers ?? []).map((m) => m.Addr)])];
    const mine = formatHostPort(this.addrs.advertise);
    const others = known.filter((a) => a !== mine);
    // Turn the list a step per attempt: a follower refuses the session, the leader may be any of them.
    const turn = others.length ? this.dialTurn++ % others.length : 0;
    const order = [...others.slice(turn), ...others.slice(0, turn)];
    return this.net.connector(() => order)(signal);
  }

  /** Keep the managers the dispatcher pushed in cluster.json, so a restart can reach one of them. */
  private rememberManagers(pushed: string[]): void {
    const m = this.membership;
    if (!m || !pushed.length) return;
    const had = m.Managers.map((x) => x.Addr);
    if (pushed.length === had.length && pushed.every((a) => had.includes(a))) return;
    m.Managers = pushed.map((Addr) => ({ NodeID: m.Managers.find((x) => x.Addr === Addr)?.NodeID ?? '', Addr }));
    saveMembership(this.opts.dataDir, m);
  }

  /** Managers' IP:PORT from the store, leader first (what the dispatcher hands to workers). */
  private managerAddrs(): string[] {
    const ms = this.store.list('nodes').filter((n) => n.Spec.Role === 'manager' && n.ManagerStatus?.Addr);
    const leaderId = this.state.raft?.status.leader;
    ms.sort((a, b) => Number(b.ID === leaderId) - Number(a.ID === leaderId));
    return ms.map((n) => n.ManagerStatus!.Addr);
  }

  /**
   * After the API is serving: the CA (x509 module, key generation) and libp2p cost more CPU than the
   * rest of a start, and nothing local waits for them (GET /swarm waits for the tokens).
   */
  private scheduleNet(): void {
    if (this.net?.identity) return this.startNet(); // joined at start: the network is up already
    // A first manager that has never made a root CA has shown no join token, so no other host can
    // be in its cluster or join it yet: the CA, its certificate and the listener wait until a token
    // is asked for (GET /swarm, join-token, rotation). A one-host cluster does not pay for them
    // (about 20 MB of an 85 MB idle daemon, measured with dist/shoal).
    if (!this.membership && !currentCluster(this.store)?.RootCA && !this.opts.externalCa) return;
    setTimeout(() => {
      if (!this.stopping) this.startNet();
    }, NET_START_DELAY_MS);
  }

  /** libp2p, in the background: a failure is logged (other nodes cannot reach this one), never fatal. */
  private startNet(): void {
    this.netStarting ??= this.bringUpNet().catch((err) => {
      this.log(`cluster network: ${errorMessage(err)}; this node works alone until restarted with a free --listen-addr`);
    });
  }

  private async bringUpNet(): Promise<void> {
    const membership = await this.ensureIdentity();
    const { ClusterNet } = await import('./cluster-net.ts');
    if (this.stopping) return;
    this.net ??= await ClusterNet.start({ dataDir: this.opts.dataDir, ...this.addrs, isRemoved: (id) => this.isRemoved(id), log: this.log });
    if (this.stopping) return void (await this.net.stop());
    this.net.isRemoved = (id) => this.isRemoved(id);
    if (!this.net.identity) await this.net.authenticate(membership);
    if (membership.Role === 'manager') {
      const { ClusterCA } = await import('./ca-service.ts');
      const ca = new ClusterCA(this.store, () => this.net?.identity ?? null);
      this.ca = ca;
      await this.net.serveManager({
        selfId: this.nodeId,
        transport: this.state.transport,
        addrOf: (id) => this.store.get('nodes', id)?.ManagerStatus?.Addr || membership.Managers.find((m) => m.NodeID === id)?.Addr || null,
        admit: (req) => ca.admit(req),
        renew: (peer, key) => ca.renew(peer, key),
        dispatcher: () => this.leader?.manager?.dispatcher ?? null,
        leaderAddr: () => {
          const id = this.state.raft.status.leader;
          return id ? this.store.get('nodes', id)?.ManagerStatus?.Addr ?? null : null;
        },
      });
    }
    if (membership.Role === 'manager') this.watchMembership();
    await this.startGossip();
    void this.scheduleRenewal();
    this.log(`cluster network: listening on ${formatHostPort(this.addrs.listen)}, advertised as ${formatHostPort(this.addrs.advertise)} (${this.net.node.peerId})`);
  }

  /**
   * On a manager: removed nodes lose their connections at once (their certificates stay valid, so
   * the guard also refuses them at every authentication and stream); and a demotion of this host
   * turns it into a worker.
   */
  private watchMembership(): void {
    const revoked = new Set<string>();
    const check = () => {
      for (const id of currentCluster(this.store)?.RemovedNodes ?? []) {
        if (revoked.has(id)) continue;
        revoked.add(id);
        this.net?.revoke(id);
      }
      if (this.store.get('nodes', this.nodeId)?.Spec.Role === 'worker') void this.confirmDemotion();
    };
    this.unwatchMembership = this.store.watch((ev) => {
      if (ev.kind === 'commit') check();
    });
    check();
  }

  /**
   * A manager catching up (after a restart, or promoted again) replays the time it was a worker:
   * act only if a linearizable read still says so.
   */
  private async confirmDemotion(): Promise<void> {
    if (this.confirming || this.demoting) return;
    this.confirming = true;
    try {
      await this.store.sync(AbortSignal.timeout(10_000));
      if (this.store.get('nodes', this.nodeId)?.Spec.Role === 'worker') await this.becomeWorker();
    } catch {
      // No leader to ask right now: the next committed entry checks again.
    } finally {
      this.confirming = false;
    }
  }

  /**
   * This manager was demoted: hand leadership over if it leads, stop the manager stages and the
   * raft log (the leader removes it from the configuration), renew its certificate as a worker, and
   * go on as a worker whose session goes to the leader over libp2p. Its tasks keep running.
   */
  private becomeWorker(): Promise<void> {
    this.demoting ??= (async () => {
      const m = this.membership!;
      this.log('this node was demoted to worker: handing over the manager role');
      this.unwatchMembership?.();
      const raft = this.state.raft;
      if (raft.status.role === 'leader') await raft.transferLeadership().catch((err) => this.log(`leadership transfer: ${errorMessage(err)}`));
      const others = this.managerAddrs().filter((a) => a !== formatHostPort(this.addrs.advertise));
      await waitUntil(() => raft.status.role !== 'leader' || !raft.status.running, 5_000);
      await this.leader?.stop();
      this.leader = null;
      m.Managers = others.map((Addr) => ({ NodeID: '', Addr }));
      m.Role = 'worker';
      for (const a of others) {
        try {
          await this.net!.renewFrom(a, m);
          break;
        } catch (err) {
          this.log(`renewing the certificate as a worker through ${a}: ${errorMessage(err)}`);
        }
      }
      saveMembership(this.opts.dataDir, m);
      await this.net?.stopManager();
      this.state.close();
      this.log('this node is a worker now');
    })().catch((err) => this.log(`demotion: ${errorMessage(err)}`));
    return this.demoting;
  }

  /**
   * This worker was promoted: it renews its certificate as a manager, then the daemon starts again
   * on its data dir as a manager with an empty raft log (the leader adds it as a learner at its
   * advertised address and sends it the state). Its tasks keep running and are re-attached.
   */
  private becomeManager(): Promise<void> {
    this.promoting ??= (async () => {
      const m = this.membership!;
      this.log('this node was promoted to manager: renewing its certificate, then starting again as a manager');
      const mine = formatHostPort(this.addrs.advertise);
      let role = 'worker';
      for (const a of [...new Set([...(this.agent?.session.managers ?? []), ...m.Managers.map((x) => x.Addr)])].filter((x) => x !== mine)) {
        try {
          role = await this.net!.renewFrom(a, m);
          break;
        } catch (err) {
          this.log(`renewing the certificate as a manager through ${a}: ${errorMessage(err)}`);
        }
      }
      if (role !== 'manager') {
        this.promoting = null; // the next heartbeat ack tries again
        return;
      }
      m.Role = 'manager';
      m.Joined = true;
      saveMembership(this.opts.dataDir, m);
      this.keepTasksOnStop = true;
      this.rejoining = true; // a log left from an earlier time as a manager is stale: start empty
      setTimeout(() => void this.restartAs({ ...this.opts, init: false, join: undefined, token: undefined }), 0);
    })().catch((err) => {
      this.promoting = null;
      this.log(`promotion: ${errorMessage(err)}`);
    });
    return this.promoting;
  }

  /** Docker's swarm leave: this host's membership files go and the daemon stops. */
  private async leave(force: boolean): Promise<void> {
    const role = this.role;
    if (!role) throw new ConflictError('this node is not in a cluster');
    if (role === 'manager' && !force) {
      throw new ConflictError('this node is a manager: leaving may cost the cluster its quorum. Demote it first ("shoal node demote" on another manager), or leave anyway with --force');
    }
    const raft = this.state.raft;
    if (role === 'manager' && raft?.status.role === 'leader' && raft.status.conf.voters.length > 1) {
      await raft.transferLeadership().catch((err) => this.log(`leadership transfer: ${errorMessage(err)}`));
    }
    this.log('leaving the cluster: this daemon stops; start it again with --init or --join');
    this.leaving = true;
    setTimeout(() => void this.stop(), 10);
  }

  /**
   * Renew this host's certificate at 50–80 % of its life: a manager issues it from the cluster CA
   * itself, a worker asks the managers it knows. A failed attempt is retried a minute later.
   */
  private async scheduleRenewal(retryMs?: number): Promise<void> {
    const { renewalDelayMs, MAX_TIMER_MS } = await import('./ca-service.ts');
    const id = this.net?.identity;
    if (!id || this.stopping) return;
    const wait = retryMs ?? renewalDelayMs(id.notBefore, id.notAfter, Date.now(), Math.random);
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => {
      if (this.stopping) return;
      if (retryMs === undefined && wait > MAX_TIMER_MS) return void this.scheduleRenewal(); // far away: wait again
      void this.renewNow().then(
        () => this.scheduleRenewal(),
        (err) => {
          this.log(`certificate renewal failed: ${errorMessage(err)}; retrying in a minute`);
          return this.scheduleRenewal(60_000);
        },
      );
    }, Math.min(wait, MAX_TIMER_MS));
  }

  private async renewNow(): Promise<void> {
    const m = this.membership;
    const net = this.net;
    if (!m || !net?.identity) return;
    if (m.Role === 'manager' && this.ca) {
      await net.adopt(await this.ca.renew(net.identity, net.key.publicKey.raw), m);
    } else {
      const mine = formatHostPort(this.addrs.advertise);
      const failures: string[] = [];
      let done = false;
      for (const a of [...new Set([...m.Managers.map((x) => x.Addr), ...(this.agent?.session.managers ?? [])])].filter((x) => x !== mine)) {
        try {
          await net.renewFrom(a, m);
          done = true;
          break;
        } catch (err) {
          failures.push(`${a}: ${errorMessage(err)}`);
        }
      }
      if (!done) throw new UnavailableError(`no manager renewed the certificate (${failures.join('; ') || 'no manager known'})`);
    }
    saveMembership(this.opts.dataDir, m);
    this.log(`certificate renewed: valid until ${new Date(net.identity!.notAfter).toISOString()}`);
  }

  private isRemoved(nodeId: string): boolean {
    return (currentCluster(this.store)?.RemovedNodes ?? []).includes(nodeId);
  }

  private async rotateToken(role: NodeRole): Promise<void> {
    if (!currentCluster(this.store)?.RootCA) {
      this.startNet(); // the tokens come with the CA: make them first
      await this.netStarting;
    }
    const { rotatedToken } = await import('./ca-service.ts');
    const id = currentCluster(this.store)?.ID;
    if (!id) throw new UnavailableError('this node is not in a cluster');
    await this.store.update((tx) => {
      const c = tx.get('clusters', id);
      if (!c) throw new UnavailableError('this node is not in a cluster');
      const token = rotatedToken(c, role);
      tx.update('clusters', { ...c, JoinTokens: { ...c.JoinTokens, [role === 'worker' ? 'Worker' : 'Manager']: token } });
    });
  }

  private apiDeps(): ApiDeps {
    return {
      store: this.store,
      nodeId: () => (this.role ? this.nodeId : null),
      identityReady: async () => {
        this.startNet();
        await this.netStarting;
      },
      initCluster: (req) => this.initCluster(req),
      joinCluster: (req) => this.joinThroughApi(req),
      leaveCluster: (force) => this.leave(force),
      rotateJoinToken: (role) => this.rotateToken(role),
      localView: () => ({
        nodeAddr: this.addrs.advertise.host,
        managers: this.membership?.Managers.map((m) => ({ NodeID: m.NodeID, Addr: m.Addr })) ?? [],
      }),
      managersIfWorker: () => (this.role === 'worker' ? [...new Set([...(this.agent?.session.managers ?? []), ...(this.membership?.Managers ?? []).map((m) => m.Addr)])] : null),
      validateTaskSpec: (spec) => {
        const runtime = spec.Runtime ?? (spec.ContainerSpec ? 'container' : 'process');
        if (!this.catalog.has(runtime)) return `TaskTemplate.Runtime: unknown runtime "${runtime}" (this node has: ${this.catalog.names().join(', ')})`;
        return this.catalog.get(runtime).validate(spec);
      },
      taskLogs: (task, o) => {
        const d = this.leader?.manager?.dispatcher;
        if (!d) throw new UnavailableError(this.role === 'manager' ? 'task logs are served by the raft leader: ask the leading manager' : 'this node is not a manager');
        return d.taskLogs(task.ID, { follow: o.follow, since: o.since, tail: o.tail, signal: o.signal });
      },
      plugins: () => this.plugins,
      version: { Version: VERSION, ApiVersion: API_VERSION, GitCommit: COMMIT, Os: platform(), Arch: arch() === 'x64' ? 'amd64' : arch() },
    };
  }

  /**
   * Docker's POST /swarm/join: admission through the manager (this host's key and files), then this
   * daemon starts again on the same data dir as the new node, as `--join` at start would have.
   */
  private async joinThroughApi(req: JoinRequestBody): Promise<string> {
    if (this.role) throw new ConflictError(`this node is already a ${this.role} of a cluster; "shoal cluster leave" first`);
    if (this.rejoining) throw new ConflictError('this node is already joining a cluster');
    const next: DaemonOptions = {
      ...this.opts, init: false, join: undefined, token: undefined,
      listenAddr: req.ListenAddr ?? this.opts.listenAddr, advertiseAddr: req.AdvertiseAddr ?? this.opts.advertiseAddr,
    };
    const addrs = addrsOf(next);
    this.rejoining = true;
    try {
      const { net, nodeId } = await joinAtStart({ ...next, join: req.RemoteAddrs[0], token: req.JoinToken }, addrs, this.log);
      await net.stop(); // the new daemon opens its own listener
      setTimeout(() => void this.restartAs(next), 10); // after this answer has gone out
      return nodeId;
    } catch (err) {
      this.rejoining = false;
      throw err;
    }
  }

  private serve(): void {
    const app = createApp(this.apiDeps());
    rmSync(this.socketPath, { force: true });
    this.servers.push(Bun.serve({ unix: this.socketPath, fetch: (req: Request) => app.fetch(req) }));
    chmodSync(this.socketPath, 0o600);
    if (this.opts.tcp) {
      this.adminTcp = startAdminTcp({
        addr: this.opts.tcp, fetch: (req, env) => app.fetch(req, env), store: this.store, nodeId: this.nodeId,
        role: () => this.role, identityReady: async () => { this.startNet(); await this.netStarting; }, log: this.log,
      });
    }
    if (this.opts.fleetAddr) this.servers.push(startFleetHttp(this.opts.fleetAddr, this.log));
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    clearTimeout(this.renewTimer);
    for (const s of this.servers) s.stop(true);
    await this.adminTcp?.stop();
    const keepTasks = this.opts.keepTasks || this.keepTasksOnStop || this.fatal !== null;
    try {
      await this.agent?.stop({ keepTasks });
    } catch (e) {
      this.log(`worker stop: ${errorMessage(e)}`);
    }
    await this.hostNet?.close({ removeIdle: !keepTasks });
    try {
      await this.leader?.stop();
    } catch (e) {
      this.log(`manager stop: ${errorMessage(e)}`);
    }
    await this.netStarting;
    await this.net?.stop();
    this.unwatchMembership?.();
    this.state.close();
    rmSync(this.socketPath, { force: true });
    if (this.leaving) {
      // The host is in no cluster any more: a new start makes or joins one as a new node.
      for (const f of ['cluster.json', 'node.json', 'node.key', 'raft', FORCE_RECORD_FILE]) rmSync(join(this.opts.dataDir, f), { recursive: true, force: true });
    }
    // Before a join: the one-voter log of a host in no cluster goes; the new node starts its own.
    if (this.rejoining) {
      for (const f of ['raft', FORCE_RECORD_FILE]) rmSync(join(this.opts.dataDir, f), { recursive: true, force: true });
    }
    if (this.fatal) this.settleStopped.reject(this.fatal);
    else this.settleStopped.resolve();
  }
}

async function waitUntil(cond: () => boolean, boundMs: number): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/** `--join` on a data dir in no cluster: admission through the manager, then this host's files. */
async function joinAtStart(opts: DaemonOptions, addrs: Addrs, log: (msg: string) => void): Promise<{ net: ClusterNet; membership: Membership; nodeId: string }> {
  const { ClusterNet } = await import('./cluster-net.ts');
  let membership: Membership | null = null;
  const net = await ClusterNet.start({ dataDir: opts.dataDir, ...addrs, isRemoved: () => false, log });
  try {
    const joined = await net.join(opts.join!, opts.token!);
    membership = {
      ClusterID: joined.clusterId,
      Role: joined.identity.role,
      RootCA: joined.trust.pem,
      Cert: joined.identity.certPem,
      Joined: true,
      Managers: [{ NodeID: joined.manager.nodeId, Addr: formatHostPort(parseHostPort('--join', opts.join!, '127.0.0.1')) }],
    };
    saveNodeId(opts.dataDir, joined.identity.nodeId);
    saveMembership(opts.dataDir, membership);
    await net.authenticate(membership);
    log(`joined cluster ${joined.clusterId} as ${joined.identity.role} ${joined.identity.nodeId} through ${opts.join}`);
    return { net, membership, nodeId: joined.identity.nodeId };
  } catch (err) {
    await net.stop();
    if (err instanceof ShoalError) throw err;
    throw new UnavailableError(`joining through ${opts.join} failed: ${errorMessage(err)}`);
  }
}
