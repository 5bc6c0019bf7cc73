import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

/** A 25-character lowercase base-36 identifier, like swarmkit's object IDs. */
export function newId(): string {
  const bytes = randomBytes(25);
  let s = '';
  for (let i = 0; i < 25; i++) s += ALPHABET[bytes[i]! % 36];
  return s;
}
