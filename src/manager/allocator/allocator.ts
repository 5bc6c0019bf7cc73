/**
 * The allocator: gives services what they need from cluster-wide pools (published ports today;
 * virtual IPs and overlay addresses later) and moves their `new` tasks to `pending` once the
 * service is allocated. A service that cannot be allocated leaves its tasks `new` with a message.
 */
import { stateRank, type Service, type Task } from '../../types/index.ts';
import { canonical, isoAt, type ObjectEvent, ReconcileStage, type StageOptions, type TaskChange, writeTasks } from '../stage.ts';
import { allocatePorts, portsInUse } from './ports.ts';

export interface AllocatorOptions extends StageOptions {
  /** Most task writes in one transaction (default 200). */
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
    this.batchSize = Math.max(1, opts.batchSize ?? 200);
  }

  protected interested(ev: ObjectEvent): boolean {
    if (ev.table === 'services') return true;
    if (ev.table !== 'tasks') return false;
    return waitingForAllocation(ev.object as Task);
  }

  protected async reconcile(signal: AbortSignal): Promise<void> {
    const blocked = await this.allocateServices(signal);
    const now = isoAt(this.clock);
    const changes: TaskChange[] = [];
    for (const t of this.store.list('tasks')) {
      if (!waitingForAllocation(t)) continue;
      const service = this.store.get('services', t.ServiceID);
      if (!service) continue; // deleted: the orchestrator and the reaper clean up
      const why = blocked.get(service.ID);
      if (why === undefined) {
        changes.push({
          id: t.ID,
          change: (cur) => (waitingForAllocation(cur) ? { ...cur, Status: { Timestamp: now, State: 'pending', Message: 'pending task scheduling' } } : null),
        });
      } else if (t.Status.Err !== why) {
        changes.push({ id: t.ID, change: (cur) => (waitingForAllocation(cur) ? { ...cur, Status: { ...cur.Status, Message: why, Err: why } } : null) });
      }
    }
    if (await writeTasks(this.store, changes, this.batchSize, signal)) this.kick();
  }

  /**
   * Bring every service's Endpoint up to its spec, oldest service first (so that it keeps its
   * ports). Returns the services that cannot be allocated, with why.
   */
  private async allocateServices(signal: AbortSignal): Promise<Map<string, string>> {
    const services = this.store.list('services').sort((a, b) => (a.CreatedAt < b.CreatedAt ? -1 : a.CreatedAt > b.CreatedAt ? 1 : a.ID < b.ID ? -1 : 1));
    const blocked = new Map<string, string>();
    const updates: Service[] = [];
    for (let i = 0; i < services.length; i++) {
      const s = services[i]!;
      const res = allocatePorts(s, portsInUse(services, s.ID));
      if (!res.ok) {
        blocked.set(s.ID, `cannot allocate service "${s.Spec.Name}": ${res.message}`);
        continue;
      }
      const endpoint: Service['Endpoint'] = {
        ...s.Endpoint,
        Spec: s.Spec.EndpointSpec ?? { Mode: 'vip' },
        Ports: res.ports,
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
