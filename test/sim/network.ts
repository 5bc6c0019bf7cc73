// A simulated network between raft hosts: per-message delay, loss, duplication (and so reordering),
// and directed link cuts for symmetric partitions, one-way partitions and isolating one node.
// Messages cross as msgpack bytes, so each delivery is a fresh copy as it would be on a wire.
import { Packr } from 'msgpackr';
import type { Message, NodeId } from '../../src/raft/index.ts';
import type { Transport } from '../../src/raft-host/transport.ts';
import type { SimClock } from './clock.ts';
import type { Rng } from './rng.ts';

const packr = new Packr({ useRecords: false });

export interface NetworkFaults {
  lossRate: number;
  duplicateRate: number;
  minDelayMs: number;
  maxDelayMs: number;
}

export const calmNetwork: NetworkFaults = { lossRate: 0, duplicateRate: 0, minDelayMs: 1, maxDelayMs: 5 };

export class SimNetwork {
  faults: NetworkFaults = { ...calmNetwork };
  private readonly handlers = new Map<NodeId, (m: Message) => void>();
  /** Directed cuts "from>to". */
  private readonly cuts = new Set<string>();
  sent = 0;
  delivered = 0;

  constructor(
    private readonly clock: SimClock,
    private readonly rng: Rng,
  ) {}

  endpoint(id: NodeId): Transport {
    return {
      send: (msgs) => {
        for (const m of msgs) this.sendOne(m);
      },
      onMessage: (handler) => {
        this.handlers.set(id, handler);
        return () => {
          if (this.handlers.get(id) === handler) this.handlers.delete(id);
        };
      },
    };
  }

  private sendOne(m: Message): void {
    this.sent++;
    if (this.cuts.has(`${m.from}>${m.to}`)) return;
    if (this.rng.chance(this.faults.lossRate)) return;
    const bytes = packr.pack(m);
    const copies = this.rng.chance(this.faults.duplicateRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay = this.rng.range(this.faults.minDelayMs, this.faults.maxDelayMs);
      this.clock.after(delay, () => {
        // A cut made while the message was in flight drops it too.
        if (this.cuts.has(`${m.from}>${m.to}`)) return;
        const h = this.handlers.get(m.to);
        if (!h) return;
        this.delivered++;
        h(decode(bytes));
      });
    }
  }

  cutOneWay(from: NodeId, to: NodeId): void {
    this.cuts.add(`${from}>${to}`);
  }

  /** Splits `group` from `rest` in both directions. */
  partition(group: NodeId[], rest: NodeId[]): void {
    for (const a of group)
      for (const b of rest) {
        this.cuts.add(`${a}>${b}`);
        this.cuts.add(`${b}>${a}`);
      }
  }

  isolate(id: NodeId, all: NodeId[]): void {
    this.partition([id], all.filter((x) => x !== id));
  }

  healAll(): void {
    this.cuts.clear();
  }

  describeCuts(): string {
    return [...this.cuts].sort().join(' ');
  }
}

function decode(bytes: Uint8Array): Message {
  const m = packr.unpack(bytes) as Message;
  // msgpack gives Buffers; hand the core plain Uint8Arrays like a real decoder would.
  if (m.entries) for (const e of m.entries) e.data = new Uint8Array(e.data);
  if (m.context) m.context = new Uint8Array(m.context);
  if (m.snapshot) m.snapshot.chunk = new Uint8Array(m.snapshot.chunk);
  return m;
}
