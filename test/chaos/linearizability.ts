/**
 * A linearizability checker for histories of a sequential model (Wing & Gong's search with Lowe's
 * memoization of (linearized set, state), the algorithm Porcupine and Knossos use), and the model of
 * what the chaos suite's clients do to a service: a register read with its version, written with a
 * compare-and-set on that version (`POST /services/{id}/update?version=N`).
 *
 * Written here because no kept npm package does this (the search found none; Porcupine is Go,
 * Knossos Clojure). test/sim/linearizability.ts is a plain read/write register for the simulator;
 * this one takes any model, which the CAS register with versions needs.
 *
 * An operation whose outcome is unknown (a timeout, a reset connection, a 503 "may still take
 * effect") has `ret: Infinity`: it may take effect at any time after its call, or never. Histories
 * are checked per key (independent registers compose: P-compositionality), each search bounded by
 * a step budget; an exhausted budget answers 'unknown', never a false failure.
 */

export interface Operation<I, O> {
  client: number;
  key: string;
  input: I;
  output: O;
  /** Invocation time (monotonic ms). */
  call: number;
  /** Completion time; Infinity when the outcome is unknown. */
  ret: number;
}

export interface Model<S, I, O> {
  init(): S;
  /** The state after `input` answered `output` in state `s`, or null when that answer is impossible there. */
  step(s: S, input: I, output: O): S | null;
  /** Equal for states the rest of the history cannot tell apart (the memo key). */
  hash(s: S): string;
}

export type Verdict = 'ok' | 'illegal' | 'unknown';

export interface KeyResult<I, O> {
  key: string;
  verdict: Verdict;
  ops: Operation<I, O>[];
  steps: number;
}

interface Entry {
  op: number;
  isCall: boolean;
  time: number;
  match: Entry | null;
  prev: Entry | null;
  next: Entry | null;
}

/** Can `ops` (one key's) be linearized under `model`? Searches at most `budget` steps. */
export function checkKey<S, I, O>(model: Model<S, I, O>, ops: Operation<I, O>[], budget = 1_000_000): { verdict: Verdict; steps: number } {
  if (ops.length === 0) return { verdict: 'ok', steps: 0 };
  const events: Entry[] = [];
  ops.forEach((o, i) => {
    if (!(o.ret >= o.call)) throw new Error(`operation ${i} of client ${o.client} returns (${o.ret}) before its call (${o.call})`);
    const call: Entry = { op: i, isCall: true, time: o.call, match: null, prev: null, next: null };
    const ret: Entry = { op: i, isCall: false, time: o.ret, match: null, prev: null, next: null };
    call.match = ret;
    events.push(call, ret);
  });
  // At equal times calls come first: touching operations count as concurrent (never a false failure).
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1));
  const head: Entry = { op: -1, isCall: false, time: -Infinity, match: null, prev: null, next: null };
  let last = head;
  for (const e of events) {
    last.next = e;
    e.prev = last;
    last = e;
  }
  const lift = (n: Entry) => {
    for (const x of [n, n.match!]) {
      x.prev!.next = x.next;
      if (x.next) x.next.prev = x.prev;
    }
  };
  const unlift = (n: Entry) => {
    for (const x of [n.match!, n]) {
      x.prev!.next = x;
      if (x.next) x.next.prev = x;
    }
  };

  const linearized = new Uint32Array(Math.ceil(ops.length / 32));
  const flip = (i: number) => void (linearized[i >> 5]! ^= 1 << (i & 31));
  const seen = new Set<string>();
  const stack: { entry: Entry; state: S }[] = [];
  let state = model.init();
  let entry = head.next;
  let steps = 0;
  while (head.next) {
    if (++steps > budget) return { verdict: 'unknown', steps };
    if (!entry) throw new Error('linearizability: the event list ended on a call (a bug in the checker)');
    if (entry.isCall) {
      const o = ops[entry.op]!;
      const next = model.step(state, o.input, o.output);
      if (next !== null) {
        flip(entry.op);
        const key = `${linearized.join(',')}|${model.hash(next)}`;
        if (!seen.has(key)) {
          seen.add(key);
          stack.push({ entry, state });
          state = next;
          lift(entry);
          entry = head.next;
          continue;
        }
        flip(entry.op);
      }
      entry = entry.next;
    } else {
      // The first pending return belongs to an operation not linearized yet: undo the last choice.
      const top = stack.pop();
      if (!top) return { verdict: 'illegal', steps };
      state = top.state;
      flip(top.entry.op);
      unlift(top.entry);
      entry = top.entry.next;
    }
  }
  return { verdict: 'ok', steps };
}

/** Check each key's operations apart; the first illegal key, else the first unknown, else ok. */
export function checkHistory<S, I, O>(model: Model<S, I, O>, ops: Operation<I, O>[], budget = 1_000_000): { verdict: Verdict; keys: KeyResult<I, O>[] } {
  const byKey = new Map<string, Operation<I, O>[]>();
  for (const o of ops) {
    let l = byKey.get(o.key);
    if (!l) byKey.set(o.key, (l = []));
    l.push(o);
  }
  const keys: KeyResult<I, O>[] = [];
  for (const [key, list] of byKey) keys.push({ key, ops: list, ...checkKey(model, list, budget) });
  const verdict = keys.some((k) => k.verdict === 'illegal') ? 'illegal' : keys.some((k) => k.verdict === 'unknown') ? 'unknown' : 'ok';
  return { verdict, keys };
}

/**
 * The shortest prefix in time of an illegal history that is already illegal (operations still
 * running at the cut count as of unknown outcome, `unknownOf` says what that makes them, null to
 * drop them), and the operations around that point: what a failure report shows.
 */
export function narrowViolation<S, I, O>(model: Model<S, I, O>, ops: Operation<I, O>[], unknownOf: (o: Operation<I, O>) => Operation<I, O> | null, context = 12, budget = 200_000): { at: number; ops: Operation<I, O>[] } {
  const times = [...new Set(ops.map((o) => o.ret).filter((t) => t !== Infinity))].sort((a, b) => a - b);
  const prefix = (t: number) => ops.filter((o) => o.call <= t).map((o) => (o.ret <= t ? o : unknownOf(o))).filter((o): o is Operation<I, O> => o !== null);
  let lo = 0;
  let hi = times.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (checkKey(model, prefix(times[mid]!), budget).verdict === 'illegal') hi = mid;
    else lo = mid + 1;
  }
  const at = times[hi] ?? Infinity;
  return { at, ops: prefix(at).sort((a, b) => a.call - b.call).slice(-context) };
}

// ---------------------------------------------------------------- the service register with CAS

export type CasInput = { f: 'read' } | { f: 'cas'; expect: number; value: string };
/**
 * read: what it saw. cas: 'ok' (applied); 'mismatch' (409 "update out of sequence": not applied, the
 * version was another); 'fail' (definitely not applied, nothing learned: a 400, a request that never
 * left); 'unknown' (may still apply).
 */
export type CasOutput = { value: string; version: number } | 'ok' | 'mismatch' | 'fail' | 'unknown';
export type CasOp = Operation<CasInput, CasOutput>;

/**
 * `version` is what is known of the register's Version.Index: exactly it when `exact`, else a lower
 * bound (after a CAS the new index is only known to be above the one it replaced).
 */
export interface CasState { value: string; version: number; exact: boolean }

/**
 * The register+CAS model of a service. Versions are raft log indexes, so they only grow. With
 * `versionBumps` the system may write the object itself (the allocator, an update status) and so
 * raise its version without changing the value: reads then only bound it from below and a 409 is
 * always possible; without, a read pins the version until the next write.
 */
export function casRegister(initial = '', versionBumps = false): Model<CasState, CasInput, CasOutput> {
  const ids = new Map<string, number>();
  const idOf = (v: string) => {
    let id = ids.get(v);
    if (id === undefined) ids.set(v, (id = ids.size));
    return id;
  };
  return {
    init: () => ({ value: initial, version: 0, exact: false }),
    hash: (s) => `${idOf(s.value)}:${s.version}:${s.exact ? 1 : 0}`,
    step(s, input, output) {
      if (input.f === 'read') {
        if (typeof output !== 'object') throw new Error(`a read's output must be {value, version}, got ${JSON.stringify(output)}`);
        if (output.value !== s.value) return null;
        if (s.exact ? output.version !== s.version : output.version < s.version) return null;
        return { value: output.value, version: output.version, exact: !versionBumps };
      }
      const mayApply = s.exact ? s.version === input.expect : s.version <= input.expect;
      const applied: CasState = { value: input.value, version: input.expect + 1, exact: false };
      switch (output) {
        case 'ok':
          return mayApply ? applied : null;
        case 'mismatch':
          return s.exact && s.version === input.expect ? null : s;
        case 'fail':
          return s;
        case 'unknown':
          // Took effect if it could at this point; else it failed here, or is linearized last (never happened).
          return mayApply ? applied : s;
        default:
          throw new Error(`a cas's output must be ok, mismatch, fail or unknown, got ${JSON.stringify(output)}`);
      }
    },
  };
}

/** Did the system raise some version by itself (one value read with two versions)? Values are unique per write. */
export function sawVersionBumps(ops: CasOp[]): boolean {
  const versions = new Map<string, number>();
  for (const o of ops) {
    if (o.input.f !== 'read' || typeof o.output !== 'object') continue;
    const k = `${o.key}\u0000${o.output.value}`;
    const v = versions.get(k);
    if (v !== undefined && v !== o.output.version) return true;
    versions.set(k, o.output.version);
  }
  return false;
}

export function formatCasOp(o: CasOp): string {
  const what = o.input.f === 'read'
    ? `read → ${typeof o.output === 'object' ? `${JSON.stringify(o.output.value.split(' ').slice(-3).join(' '))} @${o.output.version}` : String(o.output)}`
    : `cas(@${o.input.expect} → …${JSON.stringify(o.input.value.split(' ').slice(-1)[0])}) → ${String(o.output)}`;
  const t = (x: number) => (x === Infinity ? '?' : x.toFixed(0));
  return `c${o.client} ${o.key} ${what} [${t(o.call)}, ${t(o.ret)}] ms`;
}

/** An operation still running at a cut (narrowViolation): a read tells nothing, a CAS may or may not apply. */
export function casPending(o: CasOp): CasOp | null {
  return o.input.f === 'read' ? null : { ...o, output: 'unknown', ret: Infinity };
}
