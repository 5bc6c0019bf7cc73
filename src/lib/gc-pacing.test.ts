import { expect, test } from 'bun:test';
import { DAEMON_FTL_THRESHOLD, DAEMON_RAM_BYTES, JSC_FTL_ENV, JSC_RAM_ENV, paceCollector, pacedEnv } from './gc-pacing.ts';

const GiB = 1024 ** 3;

test('the compiled daemon starts again with the collector paced for 2 GiB, or the machine\'s RAM if less, and the FTL later', () => {
  expect(pacedEnv(['daemon', '--init'], { PATH: '/bin' }, true, 24 * GiB)).toEqual({
    PATH: '/bin',
    [JSC_RAM_ENV]: String(DAEMON_RAM_BYTES),
    [JSC_FTL_ENV]: String(DAEMON_FTL_THRESHOLD),
    SHOAL_GC_PACED: `${JSC_RAM_ENV},${JSC_FTL_ENV}`,
  });
  expect(pacedEnv(['daemon'], {}, true, GiB)?.[JSC_RAM_ENV]).toBe(String(GiB));
});

test('an operator\'s own FTL threshold is kept, and is not taken out of the environment', () => {
  const env = pacedEnv(['daemon'], { [JSC_FTL_ENV]: '5000' }, true, 24 * GiB)!;
  expect(env[JSC_FTL_ENV]).toBe('5000');
  expect(env.SHOAL_GC_PACED).toBe(JSC_RAM_ENV);
  process.env.SHOAL_GC_PACED = env.SHOAL_GC_PACED;
  process.env[JSC_RAM_ENV] = env[JSC_RAM_ENV];
  process.env[JSC_FTL_ENV] = '5000';
  paceCollector(['daemon']);
  expect(process.env[JSC_RAM_ENV]).toBeUndefined();
  expect(process.env[JSC_FTL_ENV]).toBe('5000');
  delete process.env[JSC_FTL_ENV];
});

test('only the daemon, only compiled, only once, and never over the operator\'s own setting', () => {
  expect(pacedEnv(['service', 'ls'], {}, true, 24 * GiB)).toBeNull();
  expect(pacedEnv(['daemon'], {}, false, 24 * GiB)).toBeNull();
  expect(pacedEnv(['daemon'], { SHOAL_GC_PACED: '1' }, true, 24 * GiB)).toBeNull();
  expect(pacedEnv(['daemon'], { [JSC_RAM_ENV]: '8589934592' }, true, 24 * GiB)).toBeNull();
});

test('the daemon so started takes the settings out of the environment its children inherit (a health check\'s command, say)', () => {
  const env = pacedEnv(['daemon'], {}, true, 24 * GiB)!;
  for (const k of ['SHOAL_GC_PACED', JSC_RAM_ENV, JSC_FTL_ENV]) process.env[k] = env[k];
  paceCollector(['daemon']);
  expect(process.env.SHOAL_GC_PACED).toBeUndefined();
  expect(process.env[JSC_RAM_ENV]).toBeUndefined();
  expect(process.env[JSC_FTL_ENV]).toBeUndefined();
});
