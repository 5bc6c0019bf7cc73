import { describe, expect, test } from 'bun:test';
import { CEILING_ENV, CEILING_SHARE, ceilingBytes, MIN_GAP_MS, memoryCeiling, POKE_MS, REGROW } from './memory-ceiling.ts';

const MiB = 2 ** 20;

/** A ceiling driven by hand: `rss` is what the next read returns, `collect` sets what it leaves. */
function rig(ceiling: number) {
  const s = { rss: 0, leaves: 0, t: 0, log: [] as [number, number][] };
  const c = memoryCeiling({
    ceilingBytes: ceiling,
    checkMs: 1e9, // the timer never fires in a test: checks are called by hand
    rss: () => s.rss,
    collect: () => {
      s.rss = s.leaves;
    },
    now: () => s.t,
    onCollect: (b, a) => s.log.push([b, a]),
  });
  return { s, c };
}

describe('memoryCeiling', () => {
  test('does nothing under the ceiling', () => {
    const { s, c } = rig(800 * MiB);
    s.rss = 799 * MiB;
    c.check();
    expect(c.collections).toBe(0);
    c.stop();
  });

  test('collects once the RSS is over the ceiling, and reports before and after', () => {
    const { s, c } = rig(800 * MiB);
    s.rss = 810 * MiB;
    s.leaves = 500 * MiB;
    c.check();
    expect(c.collections).toBe(1);
    expect(s.log).toEqual([[810 * MiB, 500 * MiB]]);
    // Over it again after the gap: again.
    s.t += MIN_GAP_MS;
    s.rss = 801 * MiB;
    c.check();
    expect(c.collections).toBe(2);
    c.stop();
  });

  test('never collects twice within the minimum gap', () => {
    const { s, c } = rig(800 * MiB);
    s.rss = 900 * MiB;
    s.leaves = 100 * MiB;
    c.check();
    s.rss = 900 * MiB;
    s.t += MIN_GAP_MS - 1;
    c.check();
    expect(c.collections).toBe(1);
    s.t += 1;
    c.check();
    expect(c.collections).toBe(2);
    c.stop();
  });

  test('a live set over the ceiling: the next collection waits for the RSS to grow by REGROW', () => {
    const { s, c } = rig(800 * MiB);
    s.rss = 1000 * MiB;
    s.leaves = 900 * MiB; // most of it is live
    c.check();
    expect(c.collections).toBe(1);
    s.t += 10 * MIN_GAP_MS;
    s.rss = 900 * MiB * REGROW - 1;
    c.check();
    expect(c.collections).toBe(1);
    s.rss = 900 * MiB * REGROW;
    c.check();
    expect(c.collections).toBe(2);
    c.stop();
  });

  test('once the RSS is back under the ceiling, the ceiling is the trigger again', () => {
    const { s, c } = rig(800 * MiB);
    s.rss = 1000 * MiB;
    s.leaves = 900 * MiB;
    c.check(); // trigger now 1125 MiB
    s.rss = 700 * MiB; // the collector's own collection gave memory back
    c.check();
    s.t += MIN_GAP_MS;
    s.rss = 820 * MiB;
    s.leaves = 600 * MiB;
    c.check();
    expect(c.collections).toBe(2);
    c.stop();
  });

  test('poke reads the RSS at most once per POKE_MS', () => {
    let reads = 0;
    let t = 0;
    const c = memoryCeiling({ ceilingBytes: 800 * MiB, checkMs: 1e9, rss: () => (reads++, 100 * MiB), now: () => t });
    c.poke();
    c.poke();
    t += POKE_MS - 1;
    c.poke();
    expect(reads).toBe(1);
    t += 1;
    c.poke();
    expect(reads).toBe(2);
    c.stop();
  });

  test('a ceiling of 0 starts no timer and collects nothing, even when asked to check', () => {
    let read = 0;
    const c = memoryCeiling({ ceilingBytes: 0, rss: () => ++read * 1024 * MiB, collect: () => { throw new Error('collected'); } });
    c.check();
    c.poke();
    c.stop();
    expect(read).toBe(0);
    expect(c.collections).toBe(0);
  });
});

describe('ceilingBytes', () => {
  test('by default a share of the paced RAM (at most 2 GiB)', () => {
    expect(ceilingBytes({}, 24 * 1024 * MiB)).toBe(Math.round(2048 * MiB * CEILING_SHARE));
    expect(ceilingBytes({}, 1024 * MiB)).toBe(Math.round(1024 * MiB * CEILING_SHARE));
  });

  test('an operator\'s own pacing (BUN_JSC_forceRAMSize) is what it is a share of', () => {
    expect(ceilingBytes({ BUN_JSC_forceRAMSize: String(8 * 1024 * MiB) }, 24 * 1024 * MiB)).toBe(Math.round(8 * 1024 * MiB * CEILING_SHARE));
  });

  test('the environment sets it in MiB; 0 turns it off', () => {
    expect(ceilingBytes({ [CEILING_ENV]: '600' }, 24 * 1024 * MiB)).toBe(600 * MiB);
    expect(ceilingBytes({ [CEILING_ENV]: '0' }, 24 * 1024 * MiB)).toBe(0);
    expect(ceilingBytes({ [CEILING_ENV]: ' ' }, 1024 * MiB)).toBe(Math.round(1024 * MiB * CEILING_SHARE));
  });

  test('a value that is not a number of MiB is refused, naming the variable and the value', () => {
    expect(() => ceilingBytes({ [CEILING_ENV]: '1G' }, 1024 * MiB)).toThrow(`${CEILING_ENV} must be a number of MiB (0 for no ceiling), not "1G"`);
    expect(() => ceilingBytes({ [CEILING_ENV]: '-5' }, 1024 * MiB)).toThrow(CEILING_ENV);
  });
});
