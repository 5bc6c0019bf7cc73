import type { Message, NodeId } from './types.ts';

/** Pending ReadIndex requests on the leader, each waiting for a quorum of heartbeat acknowledgements. */
interface ReadIndexStatus {
  /** The original request (from self or forwarded by a follower). */
  req: Message;
  /** Commit index when the request arrived: the read index once leadership is confirmed. */
  index: number;
  acks: Set<NodeId>;
}

export function ctxKey(ctx: Uint8Array): string {
  let s = '';
  for (const b of ctx) s += b.toString(16).padStart(2, '0');
  return s;
}

/** Reads waiting for a heartbeat round at once; more are refused until some complete. */
export const MAX_PENDING_READS = 4096;

export class ReadOnly {
  private pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  /** Start a read at commit index `index`; the leader then sends heartbeats carrying the context. */
  addRequest(index: number, req: Message): boolean {
    const key = ctxKey(req.context ?? new Uint8Array(0));
    if (this.pending.has(key)) return true;
    if (this.queue.length >= MAX_PENDING_READS) return false;
    this.pending.set(key, { req, index, acks: new Set() });
    this.queue.push(key);
    return true;
  }

  /** Record a heartbeat ack carrying `ctx`; returns who has acknowledged that read so far. */
  recvAck(from: NodeId, ctx: Uint8Array): Set<NodeId> | undefined {
    const rs = this.pending.get(ctxKey(ctx));
    if (!rs) return undefined;
    rs.acks.add(from);
    return rs.acks;
  }

  /**
   * Release every request up to and including the one with `ctx` (a quorum acknowledged a later
   * heartbeat, so leadership held for all earlier ones too).
   */
  advance(ctx: Uint8Array): { req: Message; index: number }[] {
    const key = ctxKey(ctx);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const done = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    return done.map((k) => {
      const rs = this.pending.get(k)!;
      this.pending.delete(k);
      return { req: rs.req, index: rs.index };
    });
  }

  /** The context of the newest pending read, to attach to heartbeats. */
  lastPendingContext(): Uint8Array | undefined {
    const k = this.queue[this.queue.length - 1];
    return k === undefined ? undefined : this.pending.get(k)!.req.context;
  }

  get size(): number {
    return this.queue.length;
  }

  reset(): void {
    this.pending.clear();
    this.queue = [];
  }
}
