/**
 * The leader's side of a rolling upgrade: a leader-only stage that follows the upgrade record in
 * the Cluster object. Workers first (`Parallelism` at a time), then managers one at a time, this
 * leader last: it hands leadership over and the next leader, already on the new executable, carries
 * on from the record. Each node is handed the executable, swaps it in, restarts with its tasks kept,
 * and must come back on the new version (ready; a manager reachable and caught up) within a bound,
 * else the upgrade pauses with the reason.
 */
import { existsSync } from 'node:fs';
import { peerIdFromString } from '@libp2p/peer-id';
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr';
import type { PeerId } from '@libp2p/interface';
import { errorMessage, UnavailableError } from '../../lib/errors.ts';
import { pushExecutable, requestActivate, requestRollback, UpgradeDeclinedError } from '../../net/upgrade.ts';
import type { RaftHost } from '../../raft-host/host.ts';
import type { MemoryStore } from '../../store/index.ts';
import type { Node, UpgradeNode, UpgradeRecord } from '../../types/index.ts';
import type { ClusterNet } from '../cluster-net.ts';
import { parseHostPort, toMultiaddrString } from '../membership.ts';
import type { UpgradeAgent } from './agent.ts';
import { runningExecutable, sha256File, stagedPath } from './executable.ts';
import { versionOf } from './plan.ts';
import { currentUpgrade, setNodeState, setPhase } from './record.ts';

export interface UpgradeDriverOptions {
  store: MemoryStore;
  raft: RaftHost;
  selfId: string;
  dataDir: string;
  net: () => ClusterNet | null;
  agent: UpgradeAgent;
  log: (msg: string) => void;
  /** How long a node may take to come back on the new version. */
  restartBoundMs?: number;
  /** How long a node may stay unreachable before it fails the upgrade. */
  reachBoundMs?: number;
}

const POLL_MS = 250;

/** This node is going away (it restarts, or hands leadership over): stop driving. */
class Yield extends Error {}

export class UpgradeDriver {
  #ac: AbortController | null = null;
  #loop: Promise<void> | null = null;
  #again = false;
  #unwatch: (() => void) | null = null;

  constructor(private readonly o: UpgradeDriverOptions) {}

  start(): void {
    this.#ac = new AbortController();
    this.#unwatch = this.o.store.watch((ev) => {
      if (ev.kind === 'update' && ev.table === 'clusters') this.#poke();
    });
    this.#poke();
  }

  async stop(): Promise<void> {
    this.#unwatch?.();
    this.#ac?.abort();
    await this.#loop;
  }

  #poke(): void {
    if (this.#loop) {
      this.#again = true;
      return;
    }
    const signal = this.#ac!.signal;
    this.#loop = (async () => {
      do {
        this.#again = false;
        await this.#drive(signal).catch((err) => {
          if (!signal.aborted && !(err instanceof Yield)) this.o.log(`upgrade: ${errorMessage(err)}`);
        });
      } while (this.#again && !signal.aborted);
    })().finally(() => (this.#loop = null));
  }

  async #drive(signal: AbortSignal): Promise<void> {
    for (;;) {
      if (signal.aborted) return;
      const rec = currentUpgrade(this.o.store);
      if (!rec || rec.Phase !== 'running') return;
      const open = rec.Nodes.filter((n) => n.State !== 'ready' && n.State !== 'skipped');
      if (open.length === 0) {
        await setPhase(this.o.store, rec.ID, 'done');
        this.o.log(`upgrade: every node runs shoal ${rec.Version}`);
        return;
      }
      const workers = open.filter((n) => n.Role === 'worker');
      const batch = workers.length > 0 ? workers.slice(0, rec.Parallelism) : [open.find((n) => n.NodeID !== this.o.selfId) ?? open[0]!];
      const results = await Promise.allSettled(batch.map((n) => this.#step(rec, n, signal)));
      if (signal.aborted) return;
      const failures = results.flatMap((r, i) => (r.status === 'rejected' && !(r.reason instanceof Yield) ? [{ n: batch[i]!, err: r.reason }] : []));
      if (results.some((r) => r.status === 'rejected' && r.reason instanceof Yield)) throw new Yield();
      if (failures.length > 0) {
        for (const f of failures) await setNodeState(this.o.store, rec.ID, f.n.NodeID, 'failed', errorMessage(f.err));
        const why = failures.map((f) => `node ${f.n.Hostname || f.n.NodeID.slice(0, 12)}: ${errorMessage(f.err)}`).join('; ');
        await setPhase(this.o.store, rec.ID, 'paused', why);
        this.o.log(`upgrade: paused: ${why}`);
        return;
      }
    }
  }

  /** One node through its steps; throws the reason it failed, or Yield when this node goes away. */
  async #step(rec: UpgradeRecord, n: UpgradeNode, signal: AbortSignal): Promise<void> {
    const { store } = this.o;
    const node = store.get('nodes', n.NodeID);
    if (!node) {
      await setNodeState(store, rec.ID, n.NodeID, 'skipped', 'the node was removed from the cluster');
      return;
    }
    const self = n.NodeID === this.o.selfId;
    if (n.State === 'restarting') {
      await this.#waitBack(n, rec.Version, signal);
      await setNodeState(store, rec.ID, n.NodeID, 'ready');
      return;
    }
    if (versionOf(node) === rec.Version) {
      await setNodeState(store, rec.ID, n.NodeID, 'ready', `runs shoal ${rec.Version}`);
      return;
    }
    if (self && this.o.raft.status.conf.voters.length > 1) {
      // Last of all: another manager (on the new version by now) leads and restarts this one.
      this.o.log('upgrade: every other node is done; handing leadership over before this manager restarts');
      await this.o.raft.transferLeadership();
      throw new Yield();
    }
    const net = this.o.net();
    if (!self && !net) throw new UnavailableError('this manager has no cluster network yet');
    // A leader deposed while its event loop was starved must not go on restarting nodes beside the new one.
    const stillLeading = () => {
      if (signal.aborted || this.o.raft.status.role !== 'leader') throw new Yield();
    };
    if (rec.Kind === 'upgrade') {
      if (self) {
        if (!(await this.o.agent.has(rec.Sha256, rec.Version))) throw new UnavailableError(`shoal ${rec.Version} is not staged on this manager`);
      } else {
        const path = await this.#source(rec);
        await this.#reach(n, signal, (target) => pushExecutable(net!.guard, target, { path, version: rec.Version, sha256: rec.Sha256, size: rec.Size }));
      }
      stillLeading();
      await setNodeState(store, rec.ID, n.NodeID, 'probed', 'staged, checksum verified, --version probed');
      await setNodeState(store, rec.ID, n.NodeID, 'restarting');
      stillLeading();
      if (self) {
        await this.o.agent.activate(rec.Version, rec.Sha256);
        throw new Yield();
      }
      await this.#reach(n, signal, (target) => requestActivate(net!.guard, target, rec.Version, rec.Sha256));
    } else {
      await setNodeState(store, rec.ID, n.NodeID, 'restarting');
      stillLeading();
      if (self) {
        await this.o.agent.rollback(rec.Version);
        throw new Yield();
      }
      await this.#reach(n, signal, (target) => requestRollback(net!.guard, target, rec.Version));
    }
    await this.#waitBack(n, rec.Version, signal);
    await setNodeState(store, rec.ID, n.NodeID, 'ready');
    this.o.log(`upgrade: node ${n.Hostname || n.NodeID.slice(0, 12)} runs shoal ${rec.Version}`);
  }

  /**
   * Run `op` on the node, again while it cannot be reached (a worker's session moves to a new leader
   * a moment after an election; a manager may be restarting), up to a bound. A node that answers
   * "no" is not asked again.
   */
  async #reach<T>(n: UpgradeNode, signal: AbortSignal, op: (target: PeerId | Multiaddr) => Promise<T>): Promise<T> {
    const deadline = Date.now() + (this.o.reachBoundMs ?? 60_000);
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted || this.o.raft.status.role !== 'leader') throw new Yield();
      const node = this.o.store.get('nodes', n.NodeID);
      if (!node) throw new UnavailableError('the node was removed from the cluster');
      try {
        const targets = targetsOf(node);
        return await op(targets[(attempt - 1) % targets.length]!);
      } catch (err) {
        if (err instanceof UpgradeDeclinedError || Date.now() > deadline) throw err;
        if (attempt === 1) this.o.log(`upgrade: node ${n.Hostname || n.NodeID.slice(0, 12)} not reachable yet (${errorMessage(err)}); trying again`);
        await new Promise((r) => setTimeout(r, Math.min(2_000, 200 * attempt)));
      }
    }
  }

  /** The executable to hand on: the staged copy, or this daemon's own when it already runs it. */
  async #source(rec: UpgradeRecord): Promise<string> {
    const staged = stagedPath(this.o.dataDir, rec.Sha256);
    if (existsSync(staged)) return staged;
    const own = runningExecutable();
    if ((await sha256File(own)) === rec.Sha256) return own;
    throw new UnavailableError(`shoal ${rec.Version} (sha256 ${rec.Sha256.slice(0, 12)}…) is neither staged on nor run by this manager`);
  }

  /** Until the node reports `version` and is ready (a manager: reachable and caught up with the log). */
  async #waitBack(n: UpgradeNode, version: string, signal: AbortSignal): Promise<void> {
    const bound = this.o.restartBoundMs ?? 120_000;
    const deadline = Date.now() + bound;
    let commitWhenBack: number | null = null;
    for (;;) {
      if (signal.aborted) throw new Yield();
      const node = this.o.store.get('nodes', n.NodeID);
      if (!node) return;
      const back = versionOf(node) === version && node.Status.State === 'ready';
      if (back && n.Role !== 'manager') return;
      if (back && node.ManagerStatus?.Reachability === 'reachable') {
        const st = this.o.raft.status;
        commitWhenBack ??= st.commit;
        const match = st.progress[n.NodeID]?.match ?? (n.NodeID === this.o.selfId ? st.applied : 0);
        if (match >= commitWhenBack) return;
      }
      if (Date.now() > deadline) {
        const now = node ? `it reports shoal ${versionOf(node) || '?'}, ${node.Status.State}${node.ManagerStatus ? `, ${node.ManagerStatus.Reachability}` : ''}` : 'it is gone';
        throw new UnavailableError(`did not come back on shoal ${version} within ${Math.round(bound / 1000)} s (${now})`);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
}

/**
 * Ways to reach a node, tried in turn: a manager at its raft address; a worker by its peer id (its
 * session keeps a connection to the leader) or at the address it gave when it joined.
 */
function targetsOf(node: Node): (PeerId | Multiaddr)[] {
  const at = (a: string) => multiaddr(toMultiaddrString(parseHostPort('address', a, '127.0.0.1')));
  const out: (PeerId | Multiaddr)[] = [];
  if (node.Spec.Role === 'manager' && node.ManagerStatus?.Addr) out.push(at(node.ManagerStatus.Addr));
  const peer = node.Description?.TLSInfo?.PeerID;
  if (peer) out.push(peerIdFromString(peer));
  if (node.AdvertiseAddr && node.AdvertiseAddr !== node.ManagerStatus?.Addr) out.push(at(node.AdvertiseAddr));
  if (out.length === 0) throw new UnavailableError('the node has reported neither its peer id nor its address yet');
  return out;
}
