import { describe, expect, test } from 'bun:test';
import type { Controller } from '../executor/contract.ts';
import { StartSlots } from './start-slots.ts';

/** A controller whose prepare and start finish only when the test says so. */
function heldController(log: string[], name: string) {
  const release: Record<string, () => void> = {};
  const held = (what: string) => () => new Promise<void>((resolve) => {
    log.push(`${name} ${what}`);
    release[what] = resolve;
  });
  const ctl: Controller = {
    prepare: held('prepare'), start: held('start'),
    wait: async () => ({ exitCode: 0, message: 'done' }), stop: async () => { log.push(`${name} stop`); },
    remove: async () => {}, recover: async () => true, logs: async function* () {}, stats: async () => ({}),
    pid: async () => 42,
  };
  return { ctl, release };
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setImmediate(r));
  expect(cond()).toBe(true);
};

describe('StartSlots', () => {
  test('no more than the bound prepare or start at once; the next begins as one finishes', async () => {
    const slots = new StartSlots(2);
    const log: string[] = [];
    const cs = ['a', 'b', 'c'].map((n) => heldController(log, n));
    const signal = new AbortController().signal;
    const done = cs.map(({ ctl }) => slots.wrap(ctl).prepare(signal));
    await until(() => log.length === 2);
    expect(log).toEqual(['a prepare', 'b prepare']);
    expect(slots.waiting).toBe(1);
    cs[0]!.release.prepare!();
    await until(() => log.length === 3);
    expect(log[2]).toBe('c prepare');
    cs[1]!.release.prepare!();
    cs[2]!.release.prepare!();
    await Promise.all(done);
    expect(slots.active).toBe(0);
  });

  test('stop, wait and pid never wait for a slot', async () => {
    const slots = new StartSlots(1);
    const log: string[] = [];
    const a = heldController(log, 'a');
    const b = slots.wrap(heldController(log, 'b').ctl);
    const signal = new AbortController().signal;
    void slots.wrap(a.ctl).start(signal);
    await until(() => log.length === 1);
    await b.stop(0);
    expect(await b.wait(signal)).toEqual({ exitCode: 0, message: 'done' });
    expect(await b.pid!()).toBe(42);
    expect(log).toEqual(['a start', 'b stop']);
    a.release.start!();
  });

  test('a task aborted while it waits for a slot gives its place up and never runs', async () => {
    const slots = new StartSlots(1);
    const log: string[] = [];
    const a = heldController(log, 'a');
    const b = heldController(log, 'b');
    const c = heldController(log, 'c');
    const never = new AbortController();
    void slots.wrap(a.ctl).start(never.signal);
    const ac = new AbortController();
    const bStart = slots.wrap(b.ctl).start(ac.signal);
    const cStart = slots.wrap(c.ctl).start(never.signal);
    ac.abort(new Error('desired state changed'));
    await expect(bStart).rejects.toThrow();
    a.release.start!();
    await until(() => log.length === 2);
    expect(log).toEqual(['a start', 'c start']);
    c.release.start!();
    await cStart;
  });

  test('a bound that is not a whole number ≥ 1 is refused by name', () => {
    expect(() => new StartSlots(0)).toThrow(/concurrent task starts must be a whole number ≥ 1, not 0/);
  });
});
