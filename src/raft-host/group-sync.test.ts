import { describe, expect, test } from 'bun:test';
import { GroupSync, type LogPosition } from './group-sync.ts';

/** A GroupSync whose fsyncs finish when the test says, recording what each reported durable. */
function harness() {
  const pending: ((err: Error | null) => void)[] = [];
  const durable: (LogPosition | null)[] = [];
  const failures: Error[] = [];
  const g = new GroupSync({
    sync: (done) => pending.push(done),
    syncNow: () => {},
    durable: (last) => durable.push(last),
    failed: (err) => failures.push(err),
  });
  const finishNext = (err: Error | null = null) => pending.shift()!(err);
  return { g, pending, durable, failures, finishNext };
}

describe('GroupSync', () => {
  test('one fsync at a time; what is written meanwhile goes into the next one, together', () => {
    const h = harness();
    const ran: string[] = [];
    h.g.wrote({ index: 1, term: 1 }, true);
    h.g.afterSync(() => ran.push('a'));
    expect(h.pending).toHaveLength(1);
    h.g.wrote({ index: 2, term: 1 }, true);
    h.g.afterSync(() => ran.push('b'));
    h.g.wrote({ index: 3, term: 1 }, true);
    h.g.afterSync(() => ran.push('c'));
    expect(h.pending).toHaveLength(1); // still the first
    h.finishNext();
    expect(ran).toEqual(['a']);
    expect(h.durable).toEqual([{ index: 1, term: 1 }]);
    expect(h.pending).toHaveLength(1); // one more for writes 2 and 3
    h.finishNext();
    expect(ran).toEqual(['a', 'b', 'c']);
    expect(h.durable).toEqual([{ index: 1, term: 1 }, { index: 3, term: 1 }]);
    expect(h.g.fsyncs).toBe(2);
  });

  test('a write that need not be synced holds nothing back and starts no fsync', () => {
    const h = harness();
    h.g.wrote(null, false);
    expect(h.pending).toHaveLength(0);
    let ran = false;
    h.g.afterSync(() => (ran = true));
    expect(ran).toBe(true);
  });

  test('a failed fsync reports once and runs nothing that waited for it', () => {
    const h = harness();
    let ran = false;
    h.g.wrote({ index: 1, term: 1 }, true);
    h.g.afterSync(() => (ran = true));
    h.finishNext(new Error('EIO'));
    expect(h.failures.map((e) => e.message)).toEqual(['EIO']);
    expect(ran).toBe(false);
    h.g.wrote({ index: 2, term: 1 }, true);
    expect(h.pending).toHaveLength(0);
  });

  test('flushNow syncs on the spot and a late background fsync changes nothing', () => {
    const h = harness();
    const ran: string[] = [];
    h.g.wrote({ index: 1, term: 1 }, true);
    h.g.afterSync(() => ran.push('a'));
    h.g.wrote({ index: 2, term: 1 }, true);
    h.g.afterSync(() => ran.push('b'));
    h.g.flushNow();
    expect(ran).toEqual(['a', 'b']);
    expect(h.durable).toEqual([{ index: 2, term: 1 }]);
    h.finishNext();
    expect(h.durable).toHaveLength(1);
  });
});
