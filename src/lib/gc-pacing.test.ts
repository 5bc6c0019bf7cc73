import { expect, test } from 'bun:test';
import { DAEMON_RAM_BYTES, JSC_RAM_ENV, JSC_SMALL_HEAP_ENV, paceCollector, pacedEnv, SMALL_HEAP_RAM_FRACTION } from './gc-pacing.ts';

const GiB = 1024 ** 3;

test('the compiled daemon starts again with the collector paced for 2 GiB, or the machine\'s RAM if less, and small heaps a tenth of it', () => {
  expect(pacedEnv(['daemon', '--init'], { PATH: '/bin' }, true, 24 * GiB)).toEqual({
    PATH: '/bin', [JSC_RAM_ENV]: String(DAEMON_RAM_BYTES), [JSC_SMALL_HEAP_ENV]: SMALL_HEAP_RAM_FRACTION, SHOAL_GC_PACED: `${JSC_RAM_ENV},${JSC_SMALL_HEAP_ENV}`,
  });
  expect(pacedEnv(['daemon'], {}, true, GiB)?.[JSC_RAM_ENV]).toBe(String(GiB));
  expect(Number(SMALL_HEAP_RAM_FRACTION)).toBe(0.1);
});

test('only the daemon, only compiled, only once', () => {
  expect(pacedEnv(['service', 'ls'], {}, true, 24 * GiB)).toBeNull();
  expect(pacedEnv(['daemon'], {}, false, 24 * GiB)).toBeNull();
  expect(pacedEnv(['daemon'], { SHOAL_GC_PACED: JSC_RAM_ENV }, true, 24 * GiB)).toBeNull();
});

test('never over the operator\'s own setting: theirs stays, the other is added, and with both set nothing is', () => {
  const own = pacedEnv(['daemon'], { [JSC_RAM_ENV]: '8589934592' }, true, 24 * GiB)!;
  expect(own[JSC_RAM_ENV]).toBe('8589934592');
  expect(own[JSC_SMALL_HEAP_ENV]).toBe(SMALL_HEAP_RAM_FRACTION);
  expect(own.SHOAL_GC_PACED).toBe(JSC_SMALL_HEAP_ENV);
  expect(pacedEnv(['daemon'], { [JSC_RAM_ENV]: '8589934592', [JSC_SMALL_HEAP_ENV]: '0.25' }, true, 24 * GiB)).toBeNull();
});

test('the daemon so started takes the settings it added out of the environment its children inherit (a health check\'s command, say), not the operator\'s', () => {
  process.env.SHOAL_GC_PACED = JSC_SMALL_HEAP_ENV;
  process.env[JSC_RAM_ENV] = '8589934592';
  process.env[JSC_SMALL_HEAP_ENV] = SMALL_HEAP_RAM_FRACTION;
  try {
    paceCollector(['daemon']);
    expect(process.env.SHOAL_GC_PACED).toBeUndefined();
    expect(process.env[JSC_SMALL_HEAP_ENV]).toBeUndefined();
    expect(process.env[JSC_RAM_ENV]).toBe('8589934592');
  } finally {
    delete process.env[JSC_RAM_ENV];
  }
});
