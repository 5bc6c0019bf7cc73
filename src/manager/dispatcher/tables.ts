/**
 * The tables every session that asked for them receives whole: the published ports (`endpoints`,
 * for the ingress) and the revoked client bundles (`revocations`, for a worker's metrics listener).
 * Each is recomputed only after a change that may have altered it, and sent again only when its
 * content changed. The overlay networks' table goes by deltas instead (net-table.ts).
 */
import type { ChangeEvent, MemoryStore } from '../../store/index.ts';
import type { Cluster, Node, Task } from '../../types/index.ts';
import { endpointTable, taskMatters } from './endpoints.ts';
import { MAX_REVOCATIONS, type RevokedClientCert, type SessionMessages } from './protocol.ts';

interface Cached<B> { json: string; body: B }

type Changed = { endpoints?: SessionMessages['endpoints']; revocations?: SessionMessages['revocations'] | null };

/**
 * The Cluster object's revoked client bundles, by serial (a stable order, so an unchanged list
 * compares equal). Null past MAX_REVOCATIONS: cut short, the list would let a revoked bundle in, so
 * none is sent and workers keep refusing TCP metrics (the API keeps far fewer records than that).
 */
export function revocationTable(cluster: Cluster | undefined): SessionMessages['revocations'] | null {
  const revoked: RevokedClientCert[] = [];
  for (const r of cluster?.ClientCerts ?? []) if (r.RevokedAt) revoked.push({ serial: r.Serial, name: r.Name, at: r.RevokedAt });
  if (revoked.length > MAX_REVOCATIONS) return null;
  revoked.sort((a, b) => a.serial.localeCompare(b.serial));
  return { revoked };
}

export class SessionTables {
  /** Each table as last computed (JSON to compare), and whether a change since may have altered it. */
  #endpoints: Cached<SessionMessages['endpoints']> | null = null;
  #endpointsDirty = true;
  #revocations: Cached<SessionMessages['revocations'] | null> | null = null;
  #revocationsDirty = true;

  constructor(private readonly store: MemoryStore) {}

  /** The endpoint table now. */
  endpoints(): SessionMessages['endpoints'] {
    if (this.#endpoints && !this.#endpointsDirty) return this.#endpoints.body;
    this.#endpointsDirty = false;
    const body = { ports: endpointTable(this.store) };
    this.#endpoints = { json: JSON.stringify(body), body };
    return body;
  }

  /** The revoked client bundles now; null when there are too many to send (see revocationTable). */
  revocations(): SessionMessages['revocations'] | null {
    if (this.#revocations && !this.#revocationsDirty) return this.#revocations.body;
    this.#revocationsDirty = false;
    const body = revocationTable(this.store.list('clusters')[0]);
    this.#revocations = { json: JSON.stringify(body), body };
    return body;
  }

  /** At a commit: the tables whose content changed since they were last computed, to send again. */
  changed(): Changed {
    const out: Changed = {};
    if (this.#endpointsDirty) {
      const before = this.#endpoints?.json;
      const now = this.endpoints();
      if (this.#endpoints!.json !== before) out.endpoints = now;
    }
    if (this.#revocationsDirty) {
      const before = this.#revocations?.json;
      const now = this.revocations();
      if (this.#revocations!.json !== before) out.revocations = now;
    }
    return out;
  }

  /** A change to the store (not a commit): which tables it may have altered. */
  note(ev: Exclude<ChangeEvent, { kind: 'commit' }>): void {
    if (ev.table === 'clusters') this.#revocationsDirty = true;
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
