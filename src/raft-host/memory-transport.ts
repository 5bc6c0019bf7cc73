// A hub connecting hosts in one process: tests, benchmarks, single-binary demos.
import type { Message, NodeId } from '../raft/index.ts';
import type { Transport } from './transport.ts';

export class InMemoryTransport {
  private readonly handlers = new Map<NodeId, (m: Message) => void>();
  private readonly cut = new Set<NodeId>();
  private queue: Message[] = [];
  private scheduled = false;

  /** The transport endpoint of node `id`. */
  connect(id: NodeId): Transport {
    return {
      send: (msgs) => this.enqueue(id, msgs),
      onMessage: (handler) => {
        this.handlers.set(id, handler);
        return () => {
          if (this.handlers.get(id) === handler) this.handlers.delete(id);
        };
      },
    };
  }

  /** Drops everything to and from `id` until heal(id). */
  isolate(id: NodeId): void {
    this.cut.add(id);
  }
  heal(id: NodeId): void {
    this.cut.delete(id);
  }

  private enqueue(from: NodeId, msgs: Message[]): void {
    if (this.cut.has(from)) return;
    for (const m of msgs) this.queue.push(m);
    if (!this.scheduled) {
      this.scheduled = true;
      // Delivered on a later turn, never re-entrantly inside the sender's ready loop.
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    for (const m of batch) {
      if (this.cut.has(m.to) || this.cut.has(m.from)) continue;
      this.handlers.get(m.to)?.(m);
    }
  }
}
