import { afterAll, describe, expect, test } from 'bun:test';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectVersion, previousOf, probeVersion, reexecArgs, StagingWriter, swapBack, swapIn } from './executable.ts';

const dir = mkdtempSync(join(tmpdir(), 'shoal-exe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const script = (name: string, body: string) => {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return p;
};
const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

describe('staging', () => {
  const bytes = new TextEncoder().encode('#!/bin/sh\necho "shoal version 0.2.0, build t"\n');

  test('an executable whose digest is the announced one is staged, private to the data dir and executable', async () => {
    const w = new StagingWriter(join(dir, 'data1'), { sha256: sha(bytes), size: bytes.length });
    await w.write(bytes.subarray(0, 10));
    await w.write(bytes.subarray(10));
    const { path, sha256 } = await w.finish();
    expect(sha256).toBe(sha(bytes));
    expect(statSync(path).mode & 0o777).toBe(0o755);
    expect(statSync(join(dir, 'data1', 'upgrade')).mode & 0o777).toBe(0o700);
    expect(await probeVersion(path)).toBe('0.2.0');
  });

  test('a digest mismatch is refused with both digests, and nothing is left behind', async () => {
    const other = sha('other');
    const w = new StagingWriter(join(dir, 'data2'), { sha256: other, size: null });
    await w.write(bytes);
    await expect(w.finish()).rejects.toThrow(`checksum mismatch: the executable's SHA-256 is ${sha(bytes)}, not the expected ${other}`);
    expect([...new Bun.Glob('*').scanSync({ cwd: join(dir, 'data2', 'upgrade') })]).toEqual([]);
  });

  test('more bytes than announced, or a bad digest string, are refused', async () => {
    const w = new StagingWriter(join(dir, 'data3'), { sha256: sha(bytes), size: 4 });
    await expect(w.write(bytes)).rejects.toThrow('longer than the announced 4 bytes');
    await w.abort();
    expect(() => new StagingWriter(join(dir, 'data3'), { sha256: 'xyz', size: null })).toThrow('expected 64 hexadecimal digits');
  });
});

describe('the --version probe', () => {
  test('another program, a crash and a wrong version are refused clearly', async () => {
    await expect(probeVersion(script('hello', 'echo hello'))).rejects.toThrow('failed its "--version" probe (exit 0: hello)');
    await expect(probeVersion(script('crash', 'exit 3'))).rejects.toThrow('exit 3');
    const p = join(dir, 'not-exec');
    writeFileSync(p, 'data', { mode: 0o644 });
    await expect(probeVersion(p)).rejects.toThrow('cannot be run');
    await expect(expectVersion(script('v1', 'echo "shoal version 0.1.0, build x"'), '0.2.0')).rejects.toThrow('says it is version 0.1.0, not the expected 0.2.0');
  });
});

test('swapIn keeps the running executable as .previous; swapBack puts it back', async () => {
  const exe = script('shoal', 'echo "shoal version 0.1.0, build a"');
  const staged = script('staged', 'echo "shoal version 0.2.0, build b"');
  await swapIn(staged, exe);
  expect(await probeVersion(exe)).toBe('0.2.0');
  expect(await probeVersion(previousOf(exe))).toBe('0.1.0');
  swapBack(exe);
  expect(await probeVersion(exe)).toBe('0.1.0');
  expect(existsSync(previousOf(exe))).toBe(false);
  expect(() => swapBack(exe)).toThrow('no previous executable');
  expect(readFileSync(exe, 'utf8')).toContain('0.1.0');
});

test('the re-exec drops the flags that act once', () => {
  expect(reexecArgs(['daemon', '--data-dir', '/d', '--force-new-cluster', '--restore', 'b.tar', '--restore=c.tar', '--init', '--listen-addr', '1.2.3.4:1'])).toEqual(['daemon', '--data-dir', '/d', '--init', '--listen-addr', '1.2.3.4:1']);
});
