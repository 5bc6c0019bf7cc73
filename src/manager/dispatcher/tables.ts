/**
 * The tables every session that asked for them receives whole: the published ports (`endpoints`,
 * for the ingress) and the overlay networks (`networks`, for the NetworkAgent). Each is recomputed
 * only after a change that may have altered it, and sent again only when its content changed.
 */
import type { ChangeEvent, MemoryStore } from '../../store/index.ts';
import type { Node, Task } from '../../types/index.ts';
import { endpointTable, taskMatters } from './endpoints.ts';
import { netTable, taskMattersForNet } from './net-table.ts';
import type { SessionMessages } from './protocol.ts';

interface Cached<B> { json: string; body: B }

export class SessionTables {
  /** Each table as last computed (JSON to compare), and whether a change since may have altered it. */
  #endpoints: Cached<SessionMessages['endpoints']> | null = null;
  #endpointsDirty = true;
  #nets: Cached<SessionMessages['networks']> | null = null;
  #netsDirty = true;

  constructor(private readonly store: MemoryStore) {}

  /** The endpoint table now. */
  endpoints(): SessionMessages['endpoints'] {
    if (this.#endpoints && !this.#endpointsDirty) return this.#endpoints.body;
    this.#endpointsDirty = false;
    const body = { ports: endpointTable(this.store) };
    this.#endpoints = { json: JSON.stringify(body), body };
    return body;
  }

  /** The network table now. */
  networks(): SessionMessages['networks'] {
    if (this.#nets && !this.#netsDirty) return this.#nets.body;
    this.#netsDirty = false;
    const body = netTable(this.store);
    this.#nets = { json: JSON.stringify(body), body };
    return body;
  }

  /** At a commit: the tables whose content changed since they were last computed, to send again. */
  changed(): { endpoints?: SessionMessages['endpoints']; networks?: SessionMessages['networks'] } {
    const out: { endpoints?: SessionMessages['endpoints']; networks?: SessionMessages['networks'] } = {};
    if (this.#endpointsDirty) {
      const before = this.#endpoints?.json;
      const now = this.endpoints();
      if (this.#endpoints!.json !== before) out.endpoints = now;
    }
    if (this.#netsDirty) {
      const before = this.#nets?.json;
      const now = this.networks();
      if (this.#nets!.json !== before) out.networks = now;
    }
    return out;
  }

  /** A change to the store (not a commit): which tables it may have altered. */
  note(ev: Exclude<ChangeEvent, { kind: 'commit' }>): void {
    if (ev.table === 'services' || ev.table === 'networks') this.#netsDirty = true;
    else if (ev.table === 'nodes' && (ev.kind !== 'update' || (ev.object as Node).Description.TLSInfo?.PeerID !== (ev.old as Node).Description.TLSInfo?.PeerID)) this.#netsDirty = true;
    else if (ev.table === 'tasks' && (ev.kind === 'delete' || taskMattersForNet(ev.object as Task, ev.kind === 'update' ? ev.old as Task : undefined))) this.#netsDirty = true;
    if (ev.table === 'services') this.#endpointsDirty = true;
    else if (ev.table === 'nodes') {
      const n = ev.object as Node;
      const old = ev.kind === 'update' ? ev.old as Node : undefined;
      if (!old || n.Description.Addr !== old.Description.Addr || n.Status.Addr !== old.Status.Addr) this.#endpointsDirty = true;
    } else if (ev.table === 'tasks' && taskMatters(ev.object as Task, ev.kind === 'update' ? ev.old as Task : undefined)) {
      this.#endpointsDirty = true;
    } else if (ev.table === 'tasks' && ev.kind === 'delete') {
      this.#endpointsDirty = true;
    }
  }
}
