/**
 * The backend table of one published port and the choice of a backend for a new connection or flow.
 *
 * Order of preference: healthy local backends, then healthy remote ones. Unhealthy backends are never
 * chosen (a task failing its health check is out of the load balancer, as in Swarm). Within a tier the
 * choice is least-connections with a rotating start, so equal loads come out round-robin and a slow
 * backend that holds connections longer gets fewer new ones (see docs/mesh.md for why).
 *
 * A backend that refused or timed out is benched for `failureCooldownMs` so the next connections do not
 * pay for the same failure; replacing the table does not forget it (a dead task can stay listed until
 * the store catches up).
 */
import { MeshConfigError } from './errors.ts';

export interface Backend {
  /** IPv4 or IPv6 address the task listens on. */
  addr: string;
  port: number;
  /** Runs on this host: preferred, it saves a hop. */
  local: boolean;
  healthy: boolean;
}

export const backendKey = (b: { addr: string; port: number }) => `${b.addr}:${b.port}`;

/** Bounds a table so a bad caller cannot make every connection scan a huge list. */
export const MAX_BACKENDS_PER_PORT = 4096;

export function validateBackends(list: readonly Backend[], where: string): Backend[] {
  if (!Array.isArray(list)) throw new MeshConfigError(`${where}: backends must be an array`);
  if (list.length > MAX_BACKENDS_PER_PORT) throw new MeshConfigError(`${where}: ${list.length} backends, at most ${MAX_BACKENDS_PER_PORT}`);
  return list.map((b, i) => {
    if (!b || typeof b.addr !== 'string' || b.addr.length === 0) throw new MeshConfigError(`${where}: backend ${i} has no address`);
    if (!Number.isInteger(b.port) || b.port < 1 || b.port > 65535) throw new MeshConfigError(`${where}: backend ${i} (${b.addr}) has port ${b.port}; want 1-65535`);
    return { addr: b.addr, port: b.port, local: !!b.local, healthy: b.healthy !== false };
  });
}

/** Shared between the ports of one proxy: live connection counts and recent failures, by backend. */
export class BackendLoad {
  private readonly active = new Map<string, number>();
  private readonly failedUntil = new Map<string, number>();

  constructor(
    readonly failureCooldownMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  activeOf(key: string): number {
    return this.active.get(key) ?? 0;
  }

  acquire(key: string): void {
    this.active.set(key, (this.active.get(key) ?? 0) + 1);
  }

  release(key: string): void {
    const n = (this.active.get(key) ?? 0) - 1;
    if (n > 0) this.active.set(key, n);
    else this.active.delete(key);
  }

  markFailed(key: string): void {
    // Bounded: one entry per backend ever tried; stale entries are dropped when they are next read.
    if (this.failedUntil.size >= MAX_BACKENDS_PER_PORT * 4) this.failedUntil.clear();
    this.failedUntil.set(key, this.now() + this.failureCooldownMs);
  }

  markAlive(key: string): void {
    this.failedUntil.delete(key);
  }

  isBenched(key: string): boolean {
    const until = this.failedUntil.get(key);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.failedUntil.delete(key);
    return false;
  }
}

/** A backend as the table keeps it: with its key computed once, not per pick. */
export interface TableEntry extends Backend {
  key: string;
}

export class BackendTable {
  private local: TableEntry[] = [];
  private remote: TableEntry[] = [];
  private cursor = 0;

  constructor(private readonly load: BackendLoad) {}

  replace(list: readonly Backend[]): void {
    const healthy = list.filter((b) => b.healthy).map((b) => ({ ...b, key: backendKey(b) }));
    this.local = healthy.filter((b) => b.local);
    this.remote = healthy.filter((b) => !b.local);
  }

  get size(): number {
    return this.local.length + this.remote.length;
  }

  /**
   * The backend for the next connection, skipping those in `tried` (this connection's failed attempts).
   * Benched backends are used only when nothing else is left in any tier. `localOnly`: this host's
   * backends only (a connection another host's mesh sent here).
   */
  pick(tried?: ReadonlySet<string>, localOnly = false): TableEntry | null {
    this.cursor = (this.cursor + 1) >>> 0;
    if (localOnly) return this.pickIn(this.local, tried, false) ?? this.pickIn(this.local, tried, true);
    return (
      this.pickIn(this.local, tried, false) ??
      this.pickIn(this.remote, tried, false) ??
      this.pickIn(this.local, tried, true) ??
      this.pickIn(this.remote, tried, true)
    );
  }

  private pickIn(tier: TableEntry[], tried: ReadonlySet<string> | undefined, benchedToo: boolean): TableEntry | null {
    const n = tier.length;
    if (n === 0) return null;
    let best: TableEntry | null = null;
    let bestLoad = Infinity;
    const start = this.cursor % n;
    for (let i = 0; i < n; i++) {
      const b = tier[(start + i) % n]!;
      const key = b.key;
      if (tried?.has(key)) continue;
      if (this.load.isBenched(key) !== benchedToo) continue;
      const l = this.load.activeOf(key);
      if (l < bestLoad) {
        best = b;
        bestLoad = l;
        if (l === 0) break;
      }
    }
    return best;
  }
}
