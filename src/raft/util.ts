import type { Entry } from './types.ts';

/** Size of an entry for the byte limits; a fixed overhead keeps empty entries from being free. */
export function entrySize(e: Entry): number {
  return e.data.length + 16;
}

/** The longest prefix of `ents` within `maxBytes` total, but always at least one entry. */
export function limitSize(ents: Entry[], maxBytes?: number): Entry[] {
  if (maxBytes === undefined || ents.length === 0) return ents;
  let size = entrySize(ents[0]);
  let n = 1;
  while (n < ents.length) {
    size += entrySize(ents[n]);
    if (size > maxBytes) break;
    n++;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

export function sizeOf(ents: Entry[]): number {
  let s = 0;
  for (const e of ents) s += e.data.length;
  return s;
}
