import { expect, test } from 'bun:test';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mappingsOf } from './pageout.ts';

test('mappingsOf: the lines of that file only, a replaced executable included', () => {
  const maps = [
    '00400000-00500000 r--p 00000000 08:01 12 /usr/bin/shoal',
    '00500000-00900000 r-xp 00100000 08:01 12 /usr/bin/shoal (deleted)',
    '00900000-00a00000 r--p 00000000 08:01 13 /usr/lib/libc.so.6',
    '7f0000000000-7f0000001000 rw-p 00000000 00:00 0 ',
    '7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]',
  ].join('\n');
  expect(mappingsOf(maps, '/usr/bin/shoal')).toEqual([
    [0x400000n, 0x500000n],
    [0x500000n, 0x900000n],
  ]);
  expect(mappingsOf(maps, '/usr/bin/other')).toEqual([]);
});

// The kernel leaves alone pages another process maps too, and every bun process on this machine
// maps the same runtime: the child runs from its own copy, as a daemon runs alone on its host.
test('pageOutExecutable gives back file-backed RSS of the running executable', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-pageout-'));
  try {
    const bun = join(dir, 'bun');
    copyFileSync(process.execPath, bun);
    const child = join(dir, 'child.ts');
    await Bun.write(
      child,
      `import { readFileSync } from 'node:fs';
       import { pageOutExecutable } from ${JSON.stringify(join(import.meta.dir, 'pageout.ts'))};
       const rssFile = () => Number(/RssFile:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
       await pageOutExecutable(); // loads bun:ffi first
       const before = rssFile();
       const n = await pageOutExecutable();
       console.log(JSON.stringify({ n, before, after: rssFile() }));`,
    );
    const p = Bun.spawnSync([bun, child], { stderr: 'pipe' });
    expect(p.stderr.toString()).toBe('');
    const r = JSON.parse(p.stdout.toString()) as { n: number; before: number; after: number };
    expect(r.n).toBeGreaterThan(0);
    // Shared libraries (libc, libstdc++) stay: at least a MiB of the runtime's own pages goes.
    expect(r.after).toBeLessThan(r.before - 1024);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
