/**
 * The shim the process executor's tests start: the native one (what a daemon on a host with a C
 * compiler uses) unless SHOAL_TEST_SHIM=js, or no compiler is found; the compliance suite runs
 * both. Built once into a temp dir shared by every test process (its name is the source's hash).
 */
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { nativeShim } from '../native-shim.ts';

export const jsShim = [process.execPath, resolve(import.meta.dir, '../shim-entry.ts')];

const dir = join(tmpdir(), `shoal-test-shim-${process.getuid?.() ?? 0}`);

/** The native shim's command, or why there is none here. */
export async function nativeTestShim(): Promise<string[] | string> {
  const n = await nativeShim(dir, { ...process.env, SHOAL_PROCESS_SHIM_KIND: 'native' });
  return 'path' in n ? [n.path] : n.reason;
}

export async function testShim(): Promise<string[]> {
  if (process.env.SHOAL_TEST_SHIM === 'js') return jsShim;
  const n = await nativeTestShim();
  return typeof n === 'string' ? jsShim : n;
}
