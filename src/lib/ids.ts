import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

/** Where ids take their randomness: the system's, unless a simulation seeds its own (see useIdSource). */
let nextByte: (() => number) | null = null;

/** A 25-character lowercase base-36 identifier, like swarmkit's object IDs. */
export function newId(): string {
  const bytes = nextByte ? Uint8Array.from({ length: 25 }, nextByte) : randomBytes(25);
  let s = '';
  for (let i = 0; i < 25; i++) s += ALPHABET[bytes[i]! % 36];
  return s;
}

/**
 * Make ids from `byte` (0–255 each call) until the returned restore function is called. Only the
 * deterministic simulation (test/sim/control-plane) uses it: a seed must replay with the same ids,
 * since the scheduler breaks ties by id.
 */
export function useIdSource(byte: () => number): () => void {
  const before = nextByte;
  nextByte = byte;
  return () => { nextByte = before; };
}
