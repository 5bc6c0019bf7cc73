/** The native shim: when it is (not) built, and what only it could get wrong (its own JSON writing). */
import { afterEach, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { collect, makeContext, makeTask, tempDir } from '../../test/compliance/fixtures.ts';
import { readJson } from './files.ts';
import { createProcessExecutor } from './index.ts';
import { nativeShim, nativeShimName } from './native-shim.ts';
import { nativeTestShim } from './testdata/shims.ts';

const native = await nativeTestShim();
const cleanups: (() => unknown)[] = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });
const signal = () => AbortSignal.timeout(10_000);

test('without a compiler, or when told so, there is no native shim and the reason says why', async () => {
  const dir = tempDir();
  cleanups.push(() => dir[Symbol.dispose]());
  expect(await nativeShim(dir.path, { PATH: '/usr/bin:/bin', CC: 'no-such-cc' })).toEqual({ reason: 'no C compiler ("no-such-cc") on this host' });
  expect(await nativeShim(dir.path, { SHOAL_PROCESS_SHIM_KIND: 'js' })).toEqual({ reason: 'SHOAL_PROCESS_SHIM_KIND=js' });
  expect(((await nativeShim(dir.path, { SHOAL_PROCESS_SHIM_KIND: 'fast' })) as { reason: string }).reason).toContain('SHOAL_PROCESS_SHIM_KIND must be');
  expect(existsSync(join(dir.path, nativeShimName()))).toBe(false);
});

test('the executor says which shim it uses, and falls back to the JavaScript one', async () => {
  const dir = tempDir();
  const logs: string[] = [];
  const saved = process.env.CC;
  process.env.CC = 'no-such-cc';
  cleanups.push(() => dir[Symbol.dispose](), () => { if (saved === undefined) delete process.env.CC; else process.env.CC = saved; });
  const fp = await createProcessExecutor({ nativeShimDir: dir.path, log: (m) => logs.push(m) }).fingerprint();
  expect(fp.healthy).toBe(true);
  expect(logs).toEqual(['process executor: JavaScript shim (no C compiler ("no-such-cc") on this host)']);
});

test.skipIf(typeof native === 'string')('built once, then reused', async () => {
  const dir = tempDir();
  cleanups.push(() => dir[Symbol.dispose]());
  const first = await nativeShim(dir.path, { PATH: process.env.PATH });
  expect(first).toEqual({ path: join(dir.path, nativeShimName()), compiled: true });
  expect(await nativeShim(dir.path, { PATH: process.env.PATH })).toEqual({ path: join(dir.path, nativeShimName()), compiled: false });
});

test.skipIf(typeof native === 'string')('output lines read back as the JavaScript shim writes them: bad UTF-8, control characters, CRLF, long lines', async () => {
  const dir = tempDir();
  const exec = createProcessExecutor({ shimCommand: native as string[] });
  const script = `printf 'a\\tb\\001\\377c\\r\\n'; printf 'é"\\\\\\n'; head -c 20000 /dev/zero | tr '\\0' x; printf '\\n'; printf 'no newline' >&2`;
  const task = makeTask({ Runtime: 'process', ProcessSpec: { Command: ['/bin/bash', '-c', script] } });
  const ctl = exec.controller(task, makeContext(join(dir.path, 'task')));
  cleanups.push(() => dir[Symbol.dispose](), () => ctl.remove());
  await ctl.prepare(signal());
  await ctl.start(signal());
  expect(await ctl.wait(signal())).toEqual({ exitCode: 0, message: 'exit code 0' });
  const lines = await collect(ctl.logs({}));
  expect(lines.map((l) => [l.stream, l.line])).toEqual([
    ['stdout', 'a\tb\u0001\uFFFDc'],
    ['stdout', 'é"\\'],
    ['stdout', 'x'.repeat(16384)],
    ['stdout', 'x'.repeat(20000 - 16384)],
    ['stderr', 'no newline'],
  ]);
  expect(readJson<{ pid: number }>(join(dir.path, 'task', 'shim.json'))?.pid).toBeGreaterThan(0);
});
