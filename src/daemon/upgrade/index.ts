/**
 * The rolling self-upgrade, as the daemon holds it: this node's agent (served on the cluster
 * network to managers), the leader-only driver, and what the admin API asks of it. See
 * docs/upgrade.md.
 */
import type { UpgradeApi } from '../../api/deps.ts';
import { UnavailableError } from '../../lib/errors.ts';
import { pushExecutable, serveUpgrade } from '../../net/upgrade.ts';
import { multiaddr } from '@multiformats/multiaddr';
import type { ClusterNet } from '../cluster-net.ts';
import type { DaemonContext } from '../context.ts';
import { parseHostPort, toMultiaddrString } from '../membership.ts';
import { UpgradeAgent } from './agent.ts';
import { UpgradeDriver } from './driver.ts';
import { beginRollback, beginUpgrade } from './plan.ts';
import { currentUpgrade } from './record.ts';

export { reexec, reexecArgs, runningExecutable } from './executable.ts';

export class DaemonUpgrade {
  readonly agent: UpgradeAgent;

  /** `restart`: stop the daemon, its tasks kept, and run its executable again in this process. */
  constructor(private readonly ctx: DaemonContext, restart: () => void) {
    this.agent = new UpgradeAgent({ dataDir: ctx.opts.dataDir, log: ctx.log, restart });
  }

  /** Serve `/shoal/upgrade/1` on the cluster network (every node; managers open it). */
  serveOn(net: ClusterNet): Promise<void> {
    return serveUpgrade(net.guard, this.agent, this.ctx.log);
  }

  /** The leader-only stage that drives the record. */
  driver(): UpgradeDriver {
    const { ctx } = this;
    return new UpgradeDriver({ store: ctx.store, raft: ctx.state.raft, selfId: ctx.nodeId, dataDir: ctx.opts.dataDir, net: () => ctx.net, agent: this.agent, log: ctx.log });
  }

  /** What the admin API calls (a manager only: workers are refused before). */
  api(): UpgradeApi {
    const { ctx } = this;
    const leader = () => ctx.state.raft?.status.leader ?? null;
    const deps = {
      store: ctx.store, dataDir: ctx.opts.dataDir, selfId: ctx.nodeId, log: ctx.log,
      stageOn: async (node: import('../../types/index.ts').Node, exe: { path: string; version: string; sha256: string; size: number }) => {
        const net = ctx.net;
        const addr = node.ManagerStatus?.Addr;
        if (!net || !addr) throw new UnavailableError('no cluster network to reach it');
        await pushExecutable(net.guard, multiaddr(toMultiaddrString(parseHostPort('address', addr, '127.0.0.1'))), exe);
      },
    };
    return {
      begin: (req) => beginUpgrade(deps, req, leader()),
      rollback: () => beginRollback(deps, leader()),
      status: () => currentUpgrade(ctx.store) ?? null,
    };
  }
}
