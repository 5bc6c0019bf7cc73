// Linearizability checker for register histories: Wing & Gong's search with Lowe's memoization of
// (linearized set, state), as in Porcupine. Histories are partitioned by key (registers are independent).

export type Value = string | null;

export interface Operation {
  client: number;
  key: string;
  kind: 'read' | 'write';
  /** write: the value written; read: the value observed. */
  value: Value;
  /** Invocation time. */
  call: number;
  /** Response time; Infinity when the outcome is unknown (timeout, crash): it may or may not have happened. */
  ret: number;
}

export type CheckResult = { ok: true } | { ok: false; key: string; ops: Operation[] } | { ok: 'unknown'; key: string };

interface Node {
  op: number; // index into ops
  isCall: boolean;
  time: number;
  match: Node | null; // call → its return
  prev: Node | null;
  next: Node | null;
}

/** Checks one register. `budget` bounds the search steps; exhausted → 'unknown' (never a false failure). */
export function checkRegister(ops: Operation[], initial: Value = null, budget = 2_000_000): boolean | 'unknown' {
  // Reads with unknown outcome tell us nothing.
  ops = ops.filter((o) => !(o.kind === 'read' && o.ret === Infinity));
  if (ops.length === 0) return true;
  const events: Node[] = [];
  for (let i = 0; i < ops.length; i++) {
    const call: Node = { op: i, isCall: true, time: ops[i]!.call, match: null, prev: null, next: null };
    const ret: Node = { op: i, isCall: false, time: ops[i]!.ret, match: null, prev: null, next: null };
    call.match = ret;
    events.push(call, ret);
  }
  // Calls before returns at equal times: touching operations count as concurrent (permissive).
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1));
  const head: Node = { op: -1, isCall: false, time: -Infinity, match: null, prev: null, next: null };
  let prev = head;
  for (const e of events) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }

  const lift = (n: Node) => {
    n.prev!.next = n.next;
    if (n.next) n.next.prev = n.prev;
    const m = n.match!;
    m.prev!.next = m.next;
    if (m.next) m.next.prev = m.prev;
  };
  const unlift = (n: Node) => {
    const m = n.match!;
    m.prev!.next = m;
    if (m.next) m.next.prev = m;
    n.prev!.next = n;
    if (n.next) n.next.prev = n;
  };

  const words = Math.ceil(ops.length / 32);
  const linearized = new Uint32Array(words);
  const cache = new Set<string>();
  const stack: { node: Node; state: Value }[] = [];
  let state = initial;
  let entry = head.next;
  let steps = 0;
  while (head.next) {
    if (++steps > budget) return 'unknown';
    if (!entry) return false; // cannot happen: the list always ends with a return
    if (entry.isCall) {
      const o = ops[entry.op]!;
      let ok: boolean;
      let next: Value;
      if (o.kind === 'write') {
        ok = true;
        next = o.value;
      } else {
        ok = o.value === state;
        next = state;
      }
      if (ok) {
        linearized[entry.op >> 5]! |= 1 << (entry.op & 31);
        const key = linearized.join(',') + '|' + (next === null ? '\u0000' : next);
        if (!cache.has(key)) {
          cache.add(key);
          stack.push({ node: entry, state });
          state = next;
          lift(entry);
          entry = head.next;
          continue;
        }
        linearized[entry.op >> 5]! &= ~(1 << (entry.op & 31));
      }
      entry = entry.next;
    } else {
      // A return whose call is not linearized yet: backtrack.
      const top = stack.pop();
      if (!top) return false;
      state = top.state;
      linearized[top.node.op >> 5]! &= ~(1 << (top.node.op & 31));
      unlift(top.node);
      entry = top.node.next;
    }
  }
  return true;
}

export function checkHistory(ops: Operation[], initial: Value = null): CheckResult {
  const byKey = new Map<string, Operation[]>();
  for (const o of ops) {
    let l = byKey.get(o.key);
    if (!l) byKey.set(o.key, (l = []));
    l.push(o);
  }
  for (const [key, list] of byKey) {
    const r = checkRegister(list, initial);
    if (r === 'unknown') return { ok: 'unknown', key };
    if (!r) return { ok: false, key, ops: list };
  }
  return { ok: true };
}

export function formatHistory(ops: Operation[]): string {
  return [...ops]
    .sort((a, b) => a.call - b.call)
    .map((o) => `  c${o.client} ${o.kind}(${o.key})=${JSON.stringify(o.value)} [${o.call}, ${o.ret === Infinity ? '?' : o.ret}]`)
    .join('\n');
}

/**
 * Narrows a non-linearizable register history to its shortest failing prefix in time (operations
 * still running at the cut count as unknown outcome) and returns the operations near the cut.
 */
export function explainViolation(ops: Operation[], initial: Value = null, context = 12): { atTime: number; ops: Operation[] } {
  const times = [...new Set(ops.flatMap((o) => [o.call, o.ret]).filter((t) => t !== Infinity))].sort((a, b) => a - b);
  const prefix = (t: number) =>
    ops.filter((o) => o.call <= t).map((o) => (o.ret <= t ? o : { ...o, ret: Infinity, value: o.kind === 'read' ? o.value : o.value }));
  let lo = 0;
  let hi = times.length - 1;
  // Invariant: the prefix at times[hi] is not linearizable.
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (checkRegister(prefix(times[mid]!), initial) === false) hi = mid;
    else lo = mid + 1;
  }
  const at = times[hi] ?? Infinity;
  const near = prefix(at).sort((a, b) => a.call - b.call).slice(-context);
  return { atTime: at, ops: near };
}
