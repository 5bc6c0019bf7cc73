/**
 * A task's secrets and configs for a guest: a tar (ustar) archive of `secrets/<name>` and
 * `configs/<name>`, with the modes and owners given, written to the task's tmpfs and attached
 * read-only as a virtio-blk disk whose serial is `shoal-files`. The guest extracts it (busybox:
 * `tar -x -f /dev/vdX -C /run`), into a tmpfs of its own. A plain archive needs no filesystem
 * driver in the guest and no mkfs on the host. (tar-stream is only a transitive dependency here,
 * without types; the few header fields below are all the format needs.)
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TaskFiles } from '../../src/executor/contract.ts';

export const FILES_DISK_SERIAL = 'shoal-files';
const BLOCK = 512;

function header(name: string, o: { mode: number; uid: number; gid: number; size: number; dir: boolean }): Buffer {
  const h = Buffer.alloc(BLOCK);
  const put = (off: number, len: number, s: string) => h.write(s, off, len, 'ascii');
  const oct = (off: number, len: number, n: number) => put(off, len, `${n.toString(8).padStart(len - 1, '0')}\0`);
  if (Buffer.byteLength(name) > 99) throw new Error(`file name "${name}" is longer than 99 bytes`);
  h.write(name, 0, 100, 'utf8');
  oct(100, 8, o.mode);
  oct(108, 8, o.uid);
  oct(116, 8, o.gid);
  oct(124, 12, o.size);
  oct(136, 12, 0);
  put(148, 8, '        ');
  put(156, 1, o.dir ? '5' : '0');
  put(257, 6, 'ustar\0');
  put(263, 2, '00');
  let sum = 0;
  for (const b of h) sum += b;
  put(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

/** The archive's bytes (a multiple of 512, as a raw disk must be). */
export function filesArchive(files: TaskFiles, read: (path: string) => Uint8Array): Buffer {
  const parts: Buffer[] = [];
  for (const d of ['secrets/', 'configs/']) parts.push(header(d, { mode: 0o755, uid: 0, gid: 0, size: 0, dir: true }));
  for (const f of files.files) {
    const data = Buffer.from(read(f.path));
    parts.push(header(`${f.kind}s/${f.target}`, { mode: f.mode, uid: f.uid, gid: f.gid, size: data.length, dir: false }));
    parts.push(data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

/** Write the archive into the task's tmpfs; returns its path (never on disk). */
export function writeFilesDisk(files: TaskFiles, read: (path: string) => Uint8Array): string {
  const path = join(files.dir, 'vm-files.tar');
  writeFileSync(path, filesArchive(files, read), { mode: 0o600 });
  return path;
}
