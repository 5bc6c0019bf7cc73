import { expect, test } from 'bun:test';
import { DAEMON_RAM_BYTES, daemonJscEnv, JSC_FTL_ENV, JSC_RAM_ENV, tuneDaemonRuntime } from './daemon-jsc.ts';

const GiB = 1024 ** 3;

test('the compiled daemon starts again with the collector paced for 2 GiB (or the machine\'s RAM if less) and without the FTL tier', () => {
  expect(daemonJscEnv(['daemon', '--init'], { PATH: '/bin' }, true, 24 * GiB)).toEqual({
    PATH: '/bin',
    [JSC_RAM_ENV]: String(DAEMON_RAM_BYTES),
    [JSC_FTL_ENV]: 'false',
    SHOAL_JSC_SET: `${JSC_RAM_ENV},${JSC_FTL_ENV}`,
  });
  expect(daemonJscEnv(['daemon'], {}, true, GiB)?.[JSC_RAM_ENV]).toBe(String(GiB));
});

test('only the daemon, only compiled, only once', () => {
  expect(daemonJscEnv(['service', 'ls'], {}, true, 24 * GiB)).toBeNull();
  expect(daemonJscEnv(['daemon'], {}, false, 24 * GiB)).toBeNull();
  expect(daemonJscEnv(['daemon'], { SHOAL_JSC_SET: JSC_RAM_ENV }, true, 24 * GiB)).toBeNull();
});

test('never over the operator\'s own setting: the others are still set, and only those are marked', () => {
  expect(daemonJscEnv(['daemon'], { [JSC_RAM_ENV]: '8589934592' }, true, 24 * GiB)).toEqual({ [JSC_RAM_ENV]: '8589934592', [JSC_FTL_ENV]: 'false', SHOAL_JSC_SET: JSC_FTL_ENV });
  expect(daemonJscEnv(['daemon'], { [JSC_FTL_ENV]: 'true' }, true, 24 * GiB)).toEqual({ [JSC_FTL_ENV]: 'true', [JSC_RAM_ENV]: String(DAEMON_RAM_BYTES), SHOAL_JSC_SET: JSC_RAM_ENV });
  expect(daemonJscEnv(['daemon'], { [JSC_RAM_ENV]: '8589934592', [JSC_FTL_ENV]: 'true' }, true, 24 * GiB)).toBeNull();
});

test('the daemon so started takes what it set out of the environment its children inherit (a health check\'s command, say), and leaves the operator\'s', () => {
  process.env.SHOAL_JSC_SET = JSC_FTL_ENV;
  process.env[JSC_FTL_ENV] = 'false';
  process.env[JSC_RAM_ENV] = '8589934592';
  try {
    tuneDaemonRuntime(['daemon']);
    expect(process.env.SHOAL_JSC_SET).toBeUndefined();
    expect(process.env[JSC_FTL_ENV]).toBeUndefined();
    expect(process.env[JSC_RAM_ENV]).toBe('8589934592');
  } finally {
    delete process.env[JSC_RAM_ENV];
  }
});
