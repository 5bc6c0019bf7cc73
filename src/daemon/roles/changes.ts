/**
 * The moves of role-machine.ts, carried out: init, join, leave, and the promotion and demotion the
 * cluster decides (a heartbeat ack says manager; the node object says worker). Each move is checked
 * against the machine before it touches anything.
 */
import type { InitRequest, JoinRequestBody } from '../../api/deps.ts';
import { ConflictError, errorMessage, InvalidArgumentError, UnavailableError } from '../../lib/errors.ts';
import { addrsOf } from '../addrs.ts';
import { initCluster } from '../cluster.ts';
import type { DaemonContext } from '../context.ts';
import { describeHost } from '../describe.ts';
import { joinCluster } from '../join.ts';
import { rememberAddrs } from '../membership.ts';
import type { DaemonOptions } from '../options.ts';

export interface RoleChangeHooks {
  /** Start the roles this host now holds (after init). */
  startRoles(): Promise<void>;
  /** Schedule the cluster network (after init). */
  startNet(): Promise<void>;
  /** Start a new daemon on the same data dir with these options, in place of this one. */
  restartAs(next: DaemonOptions): Promise<void>;
  stop(): Promise<void>;
}

export class RoleChanges {
  #confirming = false;

  constructor(private readonly ctx: DaemonContext, private readonly hooks: RoleChangeHooks) {}

  /** none → manager: the cluster object now; the CA, tokens and this node's certificate in the background (net-service.ts). */
  async init(req: InitRequest): Promise<string> {
    const { ctx } = this;
    if (ctx.role) throw new ConflictError(`this node is already a ${ctx.role} of a cluster; "shoal cluster leave" first to make a new one`);
    if (!ctx.roles.can('manager')) throw new ConflictError(`this node is ${ctx.roles.state}: wait for that to finish`);
    if (req.ListenAddr || req.AdvertiseAddr) {
      const given = rememberAddrs(ctx.opts.dataDir, {});
      ctx.addrs = addrsOf(rememberAddrs(ctx.opts.dataDir, { listenAddr: req.ListenAddr ?? ctx.opts.listenAddr ?? given.listenAddr, advertiseAddr: req.AdvertiseAddr ?? ctx.opts.advertiseAddr ?? given.advertiseAddr }));
    }
    const externalCAs = req.Spec?.CAConfig?.ExternalCAs ?? [];
    if (externalCAs.length > 0) {
      // Checked now: a cluster whose CA cannot sign could admit no node; nothing is made then.
      const { checkExternalCAs } = await import('../../api/cluster-spec.ts');
      const [first] = checkExternalCAs(externalCAs);
      const served = await (await import('../external-ca.ts')).cfsslRoot(first!).catch((err: Error) => {
        throw new UnavailableError(`Spec.CAConfig.ExternalCAs[0].URL: ${err.message}; no cluster was made`);
      });
      if (first!.CACert && first!.CACert.replace(/\s+/g, '') !== served.replace(/\s+/g, '')) {
        throw new InvalidArgumentError(`Spec.CAConfig.ExternalCAs[0].CACert: the cfssl server at ${first!.URL} signs for another root; no cluster was made`);
      }
    }
    // No runtimes yet: the node is not ready until its agent registers, with fresh fingerprints
    // (a Docker Engine or a KVM probe can take 100+ ms: not on the way to a ready API).
    await initCluster(ctx.store, ctx.nodeId, describeHost([]), req.Spec, ctx.advertised);
    ctx.roles.go('manager');
    await this.hooks.startRoles();
    await this.hooks.startNet();
    return ctx.nodeId;
  }

  /**
   * none → joining → restarting: Docker's POST /swarm/join. Admission through the manager (this
   * host's key and files), then this daemon starts again on the same data dir as the new node, as
   * `--join` at start would have.
   */
  async join(req: JoinRequestBody): Promise<string> {
    const { ctx } = this;
    if (ctx.role) throw new ConflictError(`this node is already a ${ctx.role} of a cluster; "shoal cluster leave" first`);
    if (ctx.roles.is('joining', 'restarting')) throw new ConflictError('this node is already joining a cluster');
    const next: DaemonOptions = {
      ...ctx.opts, init: false, join: undefined, token: undefined,
      listenAddr: req.ListenAddr ?? ctx.opts.listenAddr, advertiseAddr: req.AdvertiseAddr ?? ctx.opts.advertiseAddr,
    };
    const addrs = addrsOf(next);
    ctx.roles.go('joining');
    try {
      const { net, nodeId } = await joinCluster({ dataDir: ctx.opts.dataDir, join: req.RemoteAddrs[0]!, token: req.JoinToken }, addrs, ctx.log);
      await net.stop(); // the new daemon opens its own listener
      ctx.roles.go('restarting');
      setTimeout(() => void this.hooks.restartAs(next), 10); // after this answer has gone out
      return nodeId;
    } catch (err) {
      ctx.roles.go('none');
      throw err;
    }
  }

  /** → leaving: Docker's swarm leave. This host's membership files go and the daemon stops. */
  async leave(force: boolean): Promise<void> {
    const { ctx } = this;
    const role = ctx.role;
    if (!role) throw new ConflictError('this node is not in a cluster');
    if (role === 'manager' && !force) {
      throw new ConflictError('this node is a manager: leaving may cost the cluster its quorum. Demote it first ("shoal node demote" on another manager), or leave anyway with --force');
    }
    if (!ctx.roles.can('leaving')) throw new ConflictError(`this node is ${ctx.roles.state}: it cannot leave the cluster now`);
    const raft = ctx.state.raft;
    if (role === 'manager' && raft?.status.role === 'leader' && raft.status.conf.voters.length > 1) {
      await raft.transferLeadership().catch((err) => ctx.log(`leadership transfer: ${errorMessage(err)}`));
    }
    ctx.roles.go('leaving');
    ctx.log('leaving the cluster: this daemon stops; start it again with --init or --join');
    setTimeout(() => void this.hooks.stop(), 10);
  }

  /**
   * The store says this manager is a worker now. One catching up (after a restart, or promoted
   * again) replays the time it was a worker: act only if a linearizable read still says so.
   */
  async confirmDemotion(leaderSaysWorker = false): Promise<void> {
    const { ctx } = this;
    if (this.#confirming || !ctx.roles.is('manager')) return;
    this.#confirming = true;
    let retry = false;
    try {
      // The leader takes a demoted member out of the raft configuration at once (raft-members.ts) and
      // then answers none of its reads. So a member out of its own configuration whose log stood
      // still through a failed read (not one replaying old history) takes that removal as the answer.
      const removed = this.#removedFromRaft();
      if (!(removed !== null && removed === this.#stillAt)) await ctx.store.sync(AbortSignal.timeout(5_000));
      if (ctx.store.get('nodes', ctx.nodeId)?.Spec.Role === 'worker') await this.#demote();
    } catch {
      // No leader answered. A manager removed while it was down restarts with a log from before its
      // removal, still in its own old configuration: nobody sends it entries and no leader will ever
      // answer it. The leader's dispatcher (only the leader serves worker sessions) saying "worker"
      // in a heartbeat ack is then the answer, from what that leader has applied.
      if (leaderSaysWorker) {
        this.#confirming = false;
        ctx.log('no raft leader answers this manager, and the leader\'s dispatcher says this node is a worker: demoting');
        return this.#demote();
      }
      // Retried: a removed member receives no further entries to check again on.
      this.#stillAt = this.#removedFromRaft();
      retry = true;
    } finally {
      this.#confirming = false;
    }
    if (retry && ctx.roles.is('manager')) setTimeout(() => void this.confirmDemotion(), 1_000).unref?.();
  }

  /** After a failed read: the applied index at which this member found itself out of its raft configuration. */
  #stillAt: number | null = null;

  /** This member's applied index when it is out of its own raft configuration, else null. */
  #removedFromRaft(): number | null {
    const st = this.ctx.state.raft?.status;
    const id = this.ctx.nodeId;
    if (!st || !id || st.conf.voters.includes(id) || st.conf.learners.includes(id)) return null;
    return st.applied;
  }

  /**
   * manager → demoting → worker: hand leadership over if it leads, stop the manager stages and the
   * raft log (the leader removes it from the configuration), renew its certificate as a worker, and
   * go on as a worker whose session goes to the leader over libp2p. Its tasks keep running. A
   * demotion that fails half-way stays `demoting` (logged): nothing retries it.
   */
  async #demote(): Promise<void> {
    const { ctx } = this;
    if (!ctx.roles.is('manager')) return;
    ctx.roles.go('demoting');
    try {
      const m = ctx.membership!;
      ctx.log('this node was demoted to worker: handing over the manager role');
      const manager = ctx.manager;
      manager?.stopWatching();
      const raft = ctx.state.raft;
      if (raft.status.role === 'leader') await raft.transferLeadership().catch((err) => ctx.log(`leadership transfer: ${errorMessage(err)}`));
      const others = ctx.managerAddrs().filter((a) => a !== ctx.advertised);
      await waitUntil(() => raft.status.role !== 'leader' || !raft.status.running, 5_000);
      await manager?.stop();
      ctx.manager = null;
      m.Managers = others.map((Addr) => ({ NodeID: '', Addr }));
      m.Role = 'worker';
      for (const a of others) {
        try {
          await ctx.net!.renewFrom(a, m);
          break;
        } catch (err) {
          ctx.log(`renewing the certificate as a worker through ${a}: ${errorMessage(err)}`);
        }
      }
      ctx.saveMembership(m);
      await ctx.net?.stopManager();
      ctx.state.close();
      if (ctx.roles.is('demoting')) ctx.roles.go('worker');
      ctx.log('this node is a worker now');
    } catch (err) {
      ctx.log(`demotion: ${errorMessage(err)}`);
    }
  }

  /**
   * worker → promoting → restarting: renew the certificate as a manager, then the daemon starts
   * again on its data dir as a manager with an empty raft log (the leader adds it as a learner at
   * its advertised address and sends it the state). Its tasks keep running and are re-attached.
   */
  promote(): void {
    const { ctx } = this;
    if (!ctx.roles.is('worker')) return;
    ctx.roles.go('promoting');
    const failed = () => {
      if (ctx.roles.is('promoting')) ctx.roles.go('worker'); // the next heartbeat ack tries again
    };
    void (async () => {
      const m = ctx.membership!;
      ctx.log('this node was promoted to manager: renewing its certificate, then starting again as a manager');
      let role = 'worker';
      for (const a of [...new Set([...ctx.sessionManagers, ...m.Managers.map((x) => x.Addr)])].filter((x) => x !== ctx.advertised)) {
        try {
          role = await ctx.net!.renewFrom(a, m);
          break;
        } catch (err) {
          ctx.log(`renewing the certificate as a manager through ${a}: ${errorMessage(err)}`);
        }
      }
      if (role !== 'manager') return failed();
      if (!ctx.roles.is('promoting')) return; // left the cluster meanwhile
      m.Role = 'manager';
      m.Joined = true;
      ctx.saveMembership(m);
      ctx.roles.go('restarting'); // tasks kept; a log left from an earlier time as a manager is stale: start empty
      setTimeout(() => void this.hooks.restartAs({ ...ctx.opts, init: false, join: undefined, token: undefined }), 0);
    })().catch((err) => {
      failed();
      ctx.log(`promotion: ${errorMessage(err)}`);
    });
  }
}

async function waitUntil(cond: () => boolean, boundMs: number): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}
