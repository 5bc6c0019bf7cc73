// Raft's safety properties, checked incrementally as the hosts report persisted, elected and applied.
import type { Entry, NodeId } from '../../src/raft/index.ts';
import type { MemoryStorage } from '../../src/raft/index.ts';

export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
}

const fingerprint = (e: Entry) => `${e.term}:${e.type}:${Bun.hash.wyhash(e.data).toString(36)}:${e.data.length}`;

export class Invariants {
  /** term → the node that led it. */
  private readonly leaders = new Map<number, NodeId>();
  /** index → term → [fingerprint, term of index-1 (undefined when unknown)]. */
  private readonly logs = new Map<number, Map<number, [string, number | undefined]>>();
  /** index → fingerprint of the entry applied there (committed). */
  private readonly applied = new Map<number, string>();
  private readonly appliedTerm = new Map<number, number>();
  private readonly lastApplied = new Map<NodeId, number>();
  maxCommitted = 0;
  checks = 0;

  private fail(msg: string): never {
    throw new InvariantViolation(msg);
  }

  /** Election safety: at most one leader per term. Leader completeness: it holds every committed entry. */
  becameLeader(id: NodeId, term: number, storage: MemoryStorage): void {
    this.checks++;
    const prev = this.leaders.get(term);
    if (prev !== undefined && prev !== id) this.fail(`election safety: ${prev} and ${id} both led term ${term}`);
    this.leaders.set(term, id);
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    for (const [index, t] of this.appliedTerm) {
      if (index < first - 1) continue; // inside the snapshot
      if (index > last) this.fail(`leader completeness: leader ${id} of term ${term} lacks committed entry ${index} (last index ${last})`);
      const have = storage.term(index);
      if (have !== t) this.fail(`leader completeness: leader ${id} of term ${term} has term ${have} at committed index ${index}, committed term ${t}`);
    }
  }

  /** Log matching, inductively: (index, term) fixes the entry and the term before it. */
  persisted(id: NodeId, entries: Entry[], storage: MemoryStorage): void {
    const first = storage.firstIndex();
    for (const e of entries) {
      this.checks++;
      let prevTerm: number | undefined;
      if (e.index - 1 >= first - 1) {
        try {
          prevTerm = storage.term(e.index - 1);
        } catch {
          prevTerm = undefined;
        }
      }
      let byTerm = this.logs.get(e.index);
      if (!byTerm) this.logs.set(e.index, (byTerm = new Map()));
      const fp = fingerprint(e);
      const seen = byTerm.get(e.term);
      if (!seen) {
        byTerm.set(e.term, [fp, prevTerm]);
        continue;
      }
      if (seen[0] !== fp) this.fail(`log matching: ${id} holds a different entry at index ${e.index} term ${e.term}`);
      if (seen[1] !== undefined && prevTerm !== undefined && seen[1] !== prevTerm)
        this.fail(`log matching: ${id} has term ${prevTerm} before (${e.index}, ${e.term}); another log has ${seen[1]}`);
      if (seen[1] === undefined && prevTerm !== undefined) seen[1] = prevTerm;
    }
  }

  /** State machine safety: every node applies the same entry at each index, in order. */
  appliedEntry(id: NodeId, e: Entry): void {
    this.checks++;
    const last = this.lastApplied.get(id) ?? 0;
    if (e.index !== last + 1) this.fail(`apply order: ${id} applied ${e.index} after ${last}`);
    this.lastApplied.set(id, e.index);
    const fp = fingerprint(e);
    const seen = this.applied.get(e.index);
    if (seen === undefined) {
      this.applied.set(e.index, fp);
      this.appliedTerm.set(e.index, e.term);
      if (e.index > this.maxCommitted) this.maxCommitted = e.index;
    } else if (seen !== fp) this.fail(`state machine safety: ${id} applied a different entry at index ${e.index}`);
  }

  restored(id: NodeId, index: number): void {
    this.lastApplied.set(id, index);
  }
}
