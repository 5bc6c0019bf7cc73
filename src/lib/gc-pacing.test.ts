import { expect, test } from 'bun:test';
import { DAEMON_RAM_BYTES, JSC_RAM_ENV, paceCollector, pacedEnv } from './gc-pacing.ts';

const GiB = 1024 ** 3;

test('the compiled daemon starts again with the collector paced for 2 GiB, or the machine\'s RAM if less', () => {
  expect(pacedEnv(['daemon', '--init'], { PATH: '/bin' }, true, 24 * GiB)).toEqual({ PATH: '/bin', [JSC_RAM_ENV]: String(DAEMON_RAM_BYTES), SHOAL_GC_PACED: '1' });
  expect(pacedEnv(['daemon'], {}, true, GiB)?.[JSC_RAM_ENV]).toBe(String(GiB));
});

test('only the daemon, only compiled, only once, and never over the operator\'s own setting', () => {
  expect(pacedEnv(['service', 'ls'], {}, true, 24 * GiB)).toBeNull();
  expect(pacedEnv(['daemon'], {}, false, 24 * GiB)).toBeNull();
  expect(pacedEnv(['daemon'], { SHOAL_GC_PACED: '1' }, true, 24 * GiB)).toBeNull();
  expect(pacedEnv(['daemon'], { [JSC_RAM_ENV]: '8589934592' }, true, 24 * GiB)).toBeNull();
});

test('the daemon so started takes the settings out of the environment its children inherit (a health check\'s command, say)', () => {
  process.env.SHOAL_GC_PACED = '1';
  process.env[JSC_RAM_ENV] = String(DAEMON_RAM_BYTES);
  paceCollector(['daemon']);
  expect(process.env.SHOAL_GC_PACED).toBeUndefined();
  expect(process.env[JSC_RAM_ENV]).toBeUndefined();
});
