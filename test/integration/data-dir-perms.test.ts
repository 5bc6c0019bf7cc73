/**
 * The data dir holds the node's private key, the raft log's data key, the raft log (sealed with it;
 * it carries join tokens and the CA key) and task state: nothing in it may be readable by another local user, even when the directory
 * existed beforehand with looser bits (an older install, a hand-made /var/lib/shoal).
 */
import { expect, test } from 'bun:test';
import { chmodSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { tempDaemon, waitFor } from '../harness/index.ts';

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) walk(p, out);
  }
  return out;
}

const isRoot = process.getuid?.() === 0;
const setpriv = Bun.which('setpriv');

test('the data dir, the raft log and task dirs are private to the daemon user', async () => {
  await using d = await tempDaemon();
  chmodSync(d.dataDir, 0o755);
  await d.start();
  await d.ok('service', 'create', '--name', 'p', '--replicas', '1', '--', '/bin/sleep', '3600');
  await waitFor('a running task', async () => (await d.running('p')).length === 1);
  const token = (await d.json('/swarm')).JoinTokens.Manager as string;

  const bad: string[] = [];
  const wals: string[] = [];
  for (const p of [d.dataDir, ...walk(d.dataDir)]) {
    const rel = relative(d.dataDir, p) || '.';
    const st = statSync(p);
    // A task's own work dir belongs to the task (chowned to its user); its parents keep others out.
    if (/^tasks\/[^/]+\/work(\/|$)/.test(rel)) continue;
    if (st.isDirectory() && (st.mode & 0o077) !== 0) bad.push(`${rel} ${(st.mode & 0o777).toString(8)}`);
    if ((rel.startsWith('raft') || rel === 'node.json' || rel === 'dek.json' || rel.endsWith('.key')) && st.isFile() && (st.mode & 0o077) !== 0) {
      bad.push(`${rel} ${(st.mode & 0o777).toString(8)}`);
    }
    if (rel.endsWith('.wal')) wals.push(p);
  }
  expect(bad).toEqual([]);
  // The log is sealed with the data key (encryption at rest): the manager token is not in it as
  // such; the data key beside it (dek.json) is what the permissions protect.
  expect(wals.length).toBeGreaterThan(0);
  expect(wals.some((w) => readFileSync(w).includes(Buffer.from(token)))).toBe(false);

  if (isRoot && setpriv) {
    // As another user, not one file of the data dir can be read.
    for (const f of walk(d.dataDir).filter((p) => statSync(p).isFile())) {
      const r = Bun.spawnSync([setpriv, '--reuid=65534', '--regid=65534', '--clear-groups', 'cat', f], { stdout: 'ignore', stderr: 'ignore' });
      if (r.exitCode === 0) bad.push(`${relative(d.dataDir, f)} readable by uid 65534`);
    }
    expect(bad).toEqual([]);
  }
});
