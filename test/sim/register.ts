// The replicated state machine of the simulation: independent registers, "key=value" writes.
import type { StateMachine } from '../../src/raft-host/proposer.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeWrite(key: string, value: string): Uint8Array {
  return enc.encode(`${key}=${value}`);
}

export class RegisterMachine implements StateMachine {
  values = new Map<string, string>();
  appliedIndex = 0;

  apply(index: number, entry: Uint8Array): unknown {
    const s = dec.decode(entry);
    const eq = s.indexOf('=');
    if (eq < 0) throw new Error(`bad register write at ${index}: ${s}`);
    const value = s.slice(eq + 1);
    this.values.set(s.slice(0, eq), value);
    this.appliedIndex = index;
    return value;
  }

  get(key: string): string | null {
    return this.values.get(key) ?? null;
  }

  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify([...this.values]));
  }

  restore(snapshot: Uint8Array, index: number): void {
    this.values = new Map(JSON.parse(dec.decode(snapshot)) as [string, string][]);
    this.appliedIndex = index;
  }
}
