/** `shoal swarm backup --out FILE` (also `shoal cluster backup`): the cluster state, from the manager asked. */
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { readBackupHeader } from '../backup/format.ts';
import { UsageError } from './args.ts';
import type { Command } from './command.ts';

export const backupCommand: Command = {
  name: 'backup',
  summary: 'Write a backup of the cluster state (every object, the CA, the join tokens) to a file',
  usage: '--out FILE',
  options: [
    { long: 'out', short: 'o', kind: 'string', value: 'FILE', help: 'where to write it (mode 0600: it holds the CA key, the join tokens and the secrets)' },
  ],
  maxArgs: 0,
  async run(ctx) {
    const out = ctx.args.str('out');
    if (!out) throw new UsageError('"shoal swarm backup" needs --out FILE');
    const res = await ctx.client().request('POST', '/swarm/backup', { signal: ctx.signal });
    const bytes = new Uint8Array(await res.arrayBuffer());
    // Checked before it is written: a transfer cut short must not leave a file that looks like a backup.
    const h = readBackupHeader(bytes, 'the backup the daemon sent');
    const tmp = `${out}.tmp-${process.pid}`;
    try {
      writeFileSync(tmp, bytes, { mode: 0o600 });
      renameSync(tmp, out);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw new UsageError(`--out ${out}: cannot write it (${(e as Error).message})`);
    }
    const total = Object.values(h.Objects).reduce((a, b) => a + b, 0);
    const each = Object.entries(h.Objects).map(([t, n]) => `${n} ${t}`).join(', ');
    ctx.io.out(
      `Backup of cluster ${h.ClusterID} written to ${out}: raft index ${h.RaftIndex} (term ${h.RaftTerm}) on node ${h.NodeID}, ` +
        `${total} objects (${each}), ${bytes.length} bytes${h.Encryption ? ', encrypted with the cluster\'s unlock key' : ''}.\n`,
    );
  },
};
