/**
 * Structural sharing between the objects the store holds. A replica applies every batch decoded
 * afresh (all but the one that proposed it, which applies the objects its writer built), so
 * without it each version of a task carries its own copy of a spec that never changes, and each of
 * 1 000 replicas its own copy of the same template: at 100 000 tasks most of the store's memory.
 * Store objects are never changed in place (writers build new ones), which is what makes sharing
 * their parts safe.
 */

/**
 * `next` with each part that equals the same part of `base` (deeply) replaced by base's own value;
 * returns `base` itself when the two are equal throughout. `next` is changed in place, each part
 * replaced only by one equal to it: pass objects just decoded from a log entry, or written by a
 * transaction (their parts may be other store objects' parts; an equal value leaves those as they
 * read).
 */
export function share<T>(next: T, base: unknown, strings?: Map<string, string>): T {
  if (next === base) return next;
  if (typeof next === 'string') return (next === base ? base : strings ? intern(next, strings) : next) as T;
  if (typeof next !== 'object' || next === null) return next;
  if (typeof base !== 'object' || base === null) {
    if (strings) internAll(next, strings);
    return next;
  }
  if (Array.isArray(next) !== Array.isArray(base)) return share(next, undefined, strings);
  if (Array.isArray(next)) {
    let same = next.length === (base as unknown[]).length;
    for (let i = 0; i < next.length; i++) {
      const v = share(next[i], (base as unknown[])[i], strings);
      next[i] = v;
      if (v !== (base as unknown[])[i]) same = false;
    }
    return (same ? base : next) as T;
  }
  const n = next as Record<string, unknown>;
  const b = base as Record<string, unknown>;
  let same = true;
  let keys = 0;
  for (const k in n) {
    keys++;
    const v = share(n[k], b[k], strings);
    n[k] = v;
    if (v !== b[k]) same = false;
  }
  if (same) for (const _ in b) if (--keys < 0) { same = false; break; }
  return (same && keys === 0 ? base : next) as T;
}

/**
 * Share the members of a new store object with those of `base` (its previous version, or a
 * sibling), never the object itself. Other strings go through `strings`, one batch's table: the
 * thousand tasks a batch moves to `assigned` then hold one copy of the status message, not a thousand.
 */
export function shareMembers<T extends object>(next: T, base: object | undefined, strings?: Map<string, string>): T {
  const n = next as Record<string, unknown>;
  const b = (base ?? {}) as Record<string, unknown>;
  for (const k in n) n[k] = share(n[k], b[k], strings);
  return next;
}

/** Strings longer than this are rarely repeated (certificates, keys, large labels): not worth a table entry. */
const MAX_INTERNED = 128;

function intern(s: string, strings: Map<string, string>): string {
  if (s.length > MAX_INTERNED) return s;
  const had = strings.get(s);
  if (had !== undefined) return had;
  strings.set(s, s);
  return s;
}

function internAll(o: object, strings: Map<string, string>): void {
  const r = o as Record<string, unknown>;
  for (const k in r) {
    const v = r[k];
    if (typeof v === 'string') r[k] = intern(v, strings);
    else if (typeof v === 'object' && v !== null) internAll(v, strings);
  }
}
