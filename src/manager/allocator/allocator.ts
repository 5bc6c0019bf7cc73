/**
 * The allocator: gives networks a subnet and a VXLAN id, services their published ports and a
 * virtual IP per network, tasks an address per network, and moves `new` tasks to `pending` once all
 * of that is done. A service or task that cannot be allocated stays `new` with a message saying why.
 */
import { type Network, type NetworkAttachment, stateRank, type Service, type Task } from '../../types/index.ts';
import { canonical, isoAt, type ObjectEvent, ReconcileStage, type StageOptions, type TaskChange, writeTasks } from '../stage.ts';
import { AddressBook, allocateNetwork, allocateTask, allocateVips, holdsAddresses, isAllocated } from './networks.ts';
import { allocatePorts, portsInUse } from './ports.ts';

export interface AllocatorOptions extends StageOptions {
  /** Most task writes in one transaction (default 1000; fewer when they would not fit in one log entry). */
  batchSize?: number;
}

const RUNNING = stateRank('running');

function waitingForAllocation(t: Task): boolean {
  return t.Status.State === 'new' && stateRank(t.DesiredState) <= RUNNING;
}

export class Allocator extends ReconcileStage {
  readonly name = 'allocator';
  private readonly batchSize: number;

  constructor(opts: AllocatorOptions) {
    super(opts);
    this.batchSize = Math.max(1, opts.batchSize ?? 1000);
  }

  protected interested(ev: ObjectEvent): boolean {
    if (ev.table === 'services' || ev.table === 'networks') return true;
    if (ev.table !== 'tasks') return false;
    const t = ev.object as Task;
    // A task that finishes or is deleted frees addresses another task may be waiting for.
    if (t.NetworksAttachments?.length && (ev.kind === 'delete' || (ev.kind === 'update' && holdsAddresses(ev.old as Task) && !holdsAddresses(t)))) return true;
    return waitingForAllocation(t);
  }

  protected async reconcile(signal: AbortSignal): Promise<void> {
    await this.allocateNetworks(signal);
    const tasks = this.store.list('tasks');
    const book = new AddressBook(this.store.list('networks'), this.store.list('services'), tasks);
    const blocked = await this.allocateServices(book, signal);
    const now = isoAt(this.clock);
    const changes: TaskChange[] = [];
    for (const t of tasks) {
      if (!waitingForAllocation(t)) continue;
      const service = this.store.get('services', t.ServiceID);
      if (!service) continue; // deleted: the orchestrator and the reaper clean up
      let why = blocked.get(service.ID);
      let attachments: NetworkAttachment[] | undefined = t.NetworksAttachments;
      if (why === undefined && !attachments?.length && t.Spec.Networks?.length) {
        const r = allocateTask(t, book);
        if (r.ok) attachments = r.value;
        else why = `cannot allocate task: ${r.message}`;
      }
      if (why === undefined) {
        const net = attachments?.length ? { NetworksAttachments: attachments } : {};
        changes.push({
          id: t.ID,
          change: (cur) => (waitingForAllocation(cur) ? { ...cur, ...net, Status: { Timestamp: now, State: 'pending', Message: 'pending task scheduling' } } : null),
        });
      } else if (t.Status.Err !== why) {
        changes.push({ id: t.ID, change: (cur) => (waitingForAllocation(cur) ? { ...cur, Status: { ...cur.Status, Message: why, Err: why } } : null) });
      }
    }
    if (await writeTasks(this.store, changes, this.batchSize, signal)) this.kick();
  }

  /** A subnet and a VXLAN id for every network without them, one network after another. */
  private async allocateNetworks(signal: AbortSignal): Promise<void> {
    const networks = this.store.list('networks').sort(olderFirst);
    for (let i = 0; i < networks.length && !signal.aborted; i++) {
      const n = networks[i]!;
      if (isAllocated(n)) continue;
      const r = allocateNetwork(n, networks);
      if (!r.ok) {
        this.onStageError(`network ${n.Spec.Name}: ${r.message}`);
        continue;
      }
      const next: Network = { ...n, IPAM: r.value.IPAM, VNI: r.value.VNI };
      networks[i] = next;
      // The store refuses the write if it overlaps a network created meanwhile: the pass runs again.
      await this.store.update((tx) => tx.update('networks', next), signal);
    }
  }

  private reported = new Set<string>();
  private onStageError(message: string): void {
    if (this.reported.has(message)) return;
    this.reported.add(message);
    console.error(`allocator: ${message}`);
  }

  /**
   * Bring every service's Endpoint up to its spec (ports, a VIP per network), oldest service first
   * (so that it keeps its ports). Returns the services that cannot be allocated, with why.
   */
  private async allocateServices(book: AddressBook, signal: AbortSignal): Promise<Map<string, string>> {
    const services = this.store.list('services').sort(olderFirst);
    const blocked = new Map<string, string>();
    const updates: Service[] = [];
    for (let i = 0; i < services.length; i++) {
      const s = services[i]!;
      const res = allocatePorts(s, portsInUse(services, s.ID));
      if (!res.ok) {
        blocked.set(s.ID, `cannot allocate service "${s.Spec.Name}": ${res.message}`);
        continue;
      }
      const vips = allocateVips(s, book);
      if (!vips.ok) {
        blocked.set(s.ID, `cannot allocate service "${s.Spec.Name}": ${vips.message}`);
        continue;
      }
      const endpoint: Service['Endpoint'] = {
        ...s.Endpoint,
        Spec: s.Spec.EndpointSpec ?? { Mode: 'vip' },
        Ports: res.ports,
        VirtualIPs: vips.value.length ? vips.value : undefined,
      };
      if (canonical(endpoint) !== canonical(s.Endpoint ?? {})) {
        const next = { ...s, Endpoint: endpoint };
        services[i] = next; // later services see the ports this one now holds
        updates.push(next);
      }
    }
    if (updates.length && !signal.aborted) {
      // Atomic: ports are only unique when the services that hold them are written together.
      await this.store.update((tx) => updates.forEach((s) => tx.update('services', s)), signal);
    }
    return blocked;
  }
}

function olderFirst(a: { CreatedAt: string; ID: string }, b: { CreatedAt: string; ID: string }): number {
  return a.CreatedAt < b.CreatedAt ? -1 : a.CreatedAt > b.CreatedAt ? 1 : a.ID < b.ID ? -1 : a.ID > b.ID ? 1 : 0;
}
