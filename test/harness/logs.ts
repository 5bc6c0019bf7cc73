/**
 * Daemons' logs for a failing test: every daemon the harness starts is noted here, and a test body
 * wrapped in logsOnFailure prints the last lines of each daemon's log when it throws or times out,
 * so a failure in a multi-host test says what the hosts were doing.
 *
 *   test('…', logsOnFailure(async () => { … }), 120_000);
 */
import { onTestFinished } from 'bun:test';

/** What a log tail needs of a daemon. */
export interface Logged {
  readonly name: string;
  readonly output: string;
}

/** Daemons started and not yet disposed (the ones a beforeAll started, too). */
const live = new Set<Logged>();
/** Daemons started during each running logsOnFailure body. */
const scopes = new Set<Set<Logged>>();

export function noteStarted(d: Logged): void {
  live.add(d);
  for (const s of scopes) s.add(d);
}

export function noteDisposed(d: Logged): void {
  live.delete(d);
}

/** The last `lines` lines of each daemon's log, each under a header naming it. */
export function logTails(daemons: Iterable<Logged>, lines = 40): string {
  const parts: string[] = [];
  for (const d of daemons) {
    const tail = d.output.trimEnd().split('\n').slice(-lines).join('\n');
    parts.push(`----- ${d.name}: last ${lines} lines of its log -----\n${tail || '(nothing logged)'}`);
  }
  return parts.join('\n');
}

/**
 * Wrap a test body: when it throws, or is still running when the test runner gives up on it, the
 * log tails of the daemons it started (and of those still running from a beforeAll) are printed.
 */
export function logsOnFailure(fn: () => Promise<void>, lines = 40): () => Promise<void> {
  return async () => {
    const mine = new Set<Logged>();
    scopes.add(mine);
    let settled = false;
    let printed = false;
    const print = (why: string) => {
      // A body the runner gave up on may still throw later: its logs were printed then already.
      if (printed) return;
      printed = true;
      const all = new Set([...mine, ...live]);
      if (all.size) console.error(`${why}; the daemons' logs:\n${logTails(all, lines)}`);
    };
    // Runs after a timeout too, when the body never returns (and after the afterEach hooks).
    onTestFinished(() => {
      scopes.delete(mine);
      if (!settled) print('the test did not finish in time');
    });
    try {
      await fn();
    } catch (e) {
      print(`the test failed (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
      throw e;
    } finally {
      settled = true;
    }
  };
}
