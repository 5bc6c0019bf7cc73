import { expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { filesArchive } from './files-disk.ts';

test('the archive is a tar that tar extracts with each file\'s content, mode and owner', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-files-disk-'));
  try {
    const data = new Map([['/h/secrets/pw', Buffer.from('s3cret\n')], ['/h/configs/app.conf', Buffer.alloc(1000, 'x')]]);
    const files = {
      dir: '/h', secretsDir: '/h/secrets', configsDir: '/h/configs',
      files: [
        { kind: 'secret' as const, id: 'a', name: 'pw', target: 'pw', path: '/h/secrets/pw', uid: 1000, gid: 1001, mode: 0o400 },
        { kind: 'config' as const, id: 'b', name: 'app', target: 'app.conf', path: '/h/configs/app.conf', uid: 0, gid: 0, mode: 0o444 },
      ],
    };
    const tar = filesArchive(files, (p) => data.get(p)!);
    expect(tar.length % 512).toBe(0);
    writeFileSync(join(dir, 'a.tar'), tar);
    const out = join(dir, 'out');
    Bun.spawnSync(['mkdir', out]);
    const r = Bun.spawnSync(['tar', '-x', '--same-owner', '-p', '-f', join(dir, 'a.tar'), '-C', out], { stderr: 'pipe' });
    expect(r.stderr.toString()).toBe('');
    expect(readFileSync(join(out, 'secrets/pw'), 'utf8')).toBe('s3cret\n');
    expect(readFileSync(join(out, 'configs/app.conf')).length).toBe(1000);
    const st = statSync(join(out, 'secrets/pw'));
    expect(st.mode & 0o7777).toBe(0o400);
    if (process.getuid?.() === 0) expect([st.uid, st.gid]).toEqual([1000, 1001]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
