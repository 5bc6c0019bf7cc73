/**
 * What every host is, a manager too: a worker. The agent keeps a session with the dispatcher and
 * runs the tasks assigned here through the executor catalog; HostNet gives those tasks the ingress
 * mesh and their overlay networks, and announces this host over gossip once the cluster network is
 * up. The session's transport comes from dispatcher-link.ts (in-process while this host leads).
 */
import { isIP } from 'node:net';
import { errorMessage, InvalidArgumentError } from '../../lib/errors.ts';
import type { ExecutorCatalog } from '../../executor/catalog.ts';
import type { Conn } from '../../manager/dispatcher/index.ts';
import type { RevokedClientCert } from '../../manager/dispatcher/protocol.ts';
import { Agent } from '../../worker/index.ts';
import type { SessionHint } from '../../worker/manager-order.ts';
import type { ClusterNet } from '../cluster-net.ts';
import { describeHost } from '../describe.ts';
import { HostNet } from '../host-net.ts';
import type { Log } from '../options.ts';
import type { Service } from '../../lib/lifecycle.ts';

export interface WorkerRoleOptions {
  nodeId: string;
  dataDir: string;
  catalog: ExecutorCatalog;
  /** `--mesh-addr`, as given. */
  meshAddr: string | undefined;
  /** This host's advertised IP (the underlay, and where its tasks are reached unless --mesh-addr says). */
  underlay: () => string;
  connect: (signal: AbortSignal, hint?: SessionHint) => Promise<Conn>;
  /** The dispatcher says this node is a manager now (each heartbeat ack carries the role). */
  onRole: (role: 'manager' | 'worker') => void;
  /** Ask the dispatcher for the revoked client bundles (the --metrics-addr listener checks them). */
  wantRevocations?: boolean;
  /** The roots the cluster wants trusted (each heartbeat ack names them): a root rotation when they differ. */
  onCA?: (epoch: string) => void;
  /** Read at stop: leave the tasks running for the next start (--keep-tasks, a restart in place, a fatal error). */
  keepTasks: () => boolean;
  log: Log;
}

export class WorkerRole implements Service {
  readonly name = 'worker';
  readonly hostNet: HostNet;
  readonly agent: Agent;
  /** Revoked client bundles by serial, as the dispatcher last sent them; null until it has (or when not asked for). */
  clientRevocations: ReadonlyMap<string, RevokedClientCert> | null = null;

  constructor(private readonly o: WorkerRoleOptions) {
    if (o.meshAddr !== undefined && !isIP(o.meshAddr)) {
      throw new InvalidArgumentError(`--mesh-addr "${o.meshAddr}": expected an IP address of this host, such as 0.0.0.0 (all) or 10.0.0.5`);
    }
    // Every host routes every published port (the mesh); tasks there are reached at its mesh address.
    const nodeAddr = o.meshAddr && o.meshAddr !== '0.0.0.0' ? o.meshAddr : o.underlay();
    this.hostNet = new HostNet({ nodeId: o.nodeId, dataDir: o.dataDir, meshBind: o.meshAddr ?? '0.0.0.0', underlay: o.underlay, log: o.log });
    this.agent = new Agent({
      nodeId: o.nodeId,
      dataDir: o.dataDir,
      catalog: o.catalog,
      connect: o.connect,
      description: () => ({ ...describeHost([]), Addr: nodeAddr }),
      nodeAddr,
      ...this.hostNet.agentHooks(),
      ...(o.wantRevocations ? { onRevocations: (revoked: RevokedClientCert[]) => { this.clientRevocations = new Map(revoked.map((r) => [r.serial, r])); } } : {}),
      onRole: (role) => {
        this.hostNet.setRole(role);
        o.onRole(role);
      },
      onCA: o.onCA,
      log: o.log,
    });
  }

  /** Managers the session last heard of from the dispatcher, leader first. */
  get sessionManagers(): string[] {
    return this.agent.session.managers;
  }

  async start(): Promise<void> {
    await this.agent.start();
  }

  /** Gossip needs the cluster network: started once it is up (or at once when it already is). */
  startGossip(net: ClusterNet, role: 'manager' | 'worker'): Promise<void> {
    return this.hostNet.startGossip(net, role);
  }

  async stop(): Promise<void> {
    const keepTasks = this.o.keepTasks();
    try {
      await this.agent.stop({ keepTasks });
    } catch (e) {
      this.o.log(`${this.name} stop: ${errorMessage(e)}`);
    }
    await this.hostNet.close({ removeIdle: !keepTasks });
  }
}
