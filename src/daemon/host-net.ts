/**
 * This host's part of the service network (issue 6), whatever its role: the ingress mesh
 * (MeshAgent), the overlay networks of its tasks (NetworkAgent), and the host announcements over
 * gossip (HostGossip) that give the overlay its forwarding tables. The worker agent feeds the first
 * two from the dispatcher's tables; gossip starts once the cluster network is up.
 */
import { join } from 'node:path';
import { errorMessage } from '../lib/errors.ts';
import type { NetTable, EndpointPort } from '../manager/dispatcher/protocol.ts';
import { IngressProxy } from '../mesh/ingress.ts';
import { MeshAgent } from '../mesh/mesh-agent.ts';
import { NetworkAgent } from '../mesh/network-agent.ts';
import type { HostGossip } from '../net/host-gossip.ts';
import type { ClusterNet } from './cluster-net.ts';

export interface HostNetOptions {
  nodeId: string;
  /** Where published ports are bound (`--mesh-addr`, default all addresses). */
  meshBind: string;
  dataDir: string;
  /** This host's underlay address (VXLAN, gossip's `addr`). */
  underlay: () => string;
  log: (msg: string) => void;
}

export class HostNet {
  readonly mesh: MeshAgent;
  readonly network: NetworkAgent;
  #hosts: HostGossip | null = null;
  #gossipStarting: Promise<void> | null = null;
  /** Node id by libp2p peer id, from the dispatcher's network table (who signed an announcement). */
  #peerNodes = new Map<string, string>();
  readonly #o: HostNetOptions;

  constructor(o: HostNetOptions) {
    this.#o = o;
    this.mesh = new MeshAgent({
      nodeId: o.nodeId, log: o.log,
      proxy: new IngressProxy({ bindAddress: o.meshBind, localOnlyFrom: (a) => this.mesh.isPeer(a) }),
    });
    this.network = new NetworkAgent({
      underlay: o.underlay,
      remote: (net) => this.#hosts?.directory.forwarding(net) ?? [],
      onLocalChange: () => this.#announceLocal(),
      stateFile: join(o.dataDir, 'networks.json'),
      log: o.log,
    });
  }

  /** The agent's hooks: the endpoint and network tables, and the tasks' network plumbing. */
  agentHooks() {
    return {
      onEndpoints: (ports: EndpointPort[]) => this.mesh.apply(ports),
      onNetworks: (table: NetTable) => {
        if (table.hosts) this.#peerNodes = new Map(table.hosts.map((h) => [h.peer, h.node]));
        void this.network.setTable(table);
      },
      network: this.network,
    };
  }

  setRole(role: 'manager' | 'worker'): void {
    this.#hosts?.setRole(role);
  }

  /** Announce this host over gossip (once the cluster network is up); follow the others'. */
  startGossip(net: ClusterNet, role: 'manager' | 'worker'): Promise<void> {
    this.#gossipStarting ??= this.#startGossip(net, role).catch((e) => this.#o.log(`gossip: ${errorMessage(e)}`));
    return this.#gossipStarting;
  }

  async #startGossip(net: ClusterNet, role: 'manager' | 'worker'): Promise<void> {
    const { HostGossip } = await import('../net/host-gossip.ts');
    const self = net.node.peerId.toString();
    const hosts = new HostGossip({
      node: net.node, nodeId: this.#o.nodeId, role, addr: this.#o.underlay(),
      nodeOfPeer: (p) => this.#peerNodes.get(p) ?? (p === self ? this.#o.nodeId : undefined),
      isAuthenticated: (p) => net.guard.isAuthenticatedPeer(p),
      log: this.#o.log,
    });
    this.#hosts = hosts;
    hosts.directory.onChange(() => void this.network.refreshForwarding());
    this.#announceLocal();
    hosts.start();
  }

  #announceLocal(): void {
    try {
      this.#hosts?.setLocal(this.network.localNets());
    } catch (e) {
      this.#o.log(`gossip: ${errorMessage(e)}`);
    }
  }

  /**
   * Published ports close and DNS stops; task plumbing stays for tasks that outlive the daemon.
   * `removeIdle`: the tasks were stopped, so networks without a local task are taken down.
   */
  async close(opts: { removeIdle?: boolean } = {}): Promise<void> {
    this.mesh.close();
    await this.network.close(opts);
    this.#hosts?.stop();
  }
}
