/**
 * `shoal fleet upgrade`: the rolling self-upgrade of every node's executable (docs/upgrade.md).
 * The executable goes to the manager as the request body (or the manager downloads `--url`); the
 * CLI then follows the upgrade record, printing each node's steps, until it is done or paused.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import type { UpgradeRecord } from '../types/index.ts';
import { UsageError } from './args.ts';
import type { Client } from './client.ts';
import { type Command, FORMAT_OPTION, type Group, type Io } from './command.ts';
import { json } from './format.ts';
import { parseCount, parseDuration } from './units.ts';

const POLL_MS = 500;

async function sha256Of(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of Bun.file(path).stream()) h.update(chunk);
  return h.digest('hex');
}

const who = (n: UpgradeRecord['Nodes'][number]) => `${n.NodeID.slice(0, 12)} ${(n.Hostname || '-').padEnd(12)} ${n.Role.padEnd(7)}`;

function table(rec: UpgradeRecord): string {
  const head = `${rec.Kind} to shoal ${rec.Version}: ${rec.Phase}${rec.Message ? ` (${rec.Message})` : ''}; started ${rec.StartedAt}\n`;
  const rows = rec.Nodes.map((n) => `  ${who(n)} ${n.From.padEnd(10)} ${n.State.padEnd(10)} ${n.Message ?? ''}`.trimEnd());
  return `${head}  ${'NODE'.padEnd(12)} ${'HOSTNAME'.padEnd(12)} ${'ROLE'.padEnd(7)} ${'FROM'.padEnd(10)} ${'STATE'.padEnd(10)} MESSAGE\n${rows.join('\n')}\n`;
}

/** Print each node's steps as they happen, until the record is done (0) or paused (an error). */
async function follow(client: Client, io: Io, started: UpgradeRecord, timeoutMs: number, signal: AbortSignal): Promise<number> {
  const t0 = Date.now();
  const seen = new Set<string>();
  let unreachableSince: number | null = null;
  for (;;) {
    let rec: UpgradeRecord | null = null;
    try {
      rec = await client.json<UpgradeRecord>('GET', '/shoal/upgrade', { signal });
      unreachableSince = null;
    } catch (err) {
      // The manager answering may be the one restarting right now: ask again.
      unreachableSince ??= Date.now();
      if (Date.now() - unreachableSince > 120_000) throw new Error(`lost the daemon while following the upgrade (${(err as Error).message}); "shoal fleet upgrade --status" shows where it stands`);
    }
    if (rec) {
      if (rec.ID !== started.ID) throw new Error(`another change replaced this ${started.Kind}: now ${rec.Kind} to shoal ${rec.Version} (${rec.Phase})`);
      for (const n of rec.Nodes) {
        const key = `${n.NodeID}:${n.State}`;
        if (seen.has(key) || n.State === 'pending') continue;
        seen.add(key);
        io.out(`${who(n)} ${n.State}${n.Message ? `: ${n.Message}` : ''}\n`);
      }
      if (rec.Phase === 'done') {
        io.out(`${rec.Kind} done: every node runs shoal ${rec.Version} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
        return 0;
      }
      if (rec.Phase === 'paused') {
        throw new Error(`${rec.Kind} paused: ${rec.Message ?? 'a node failed'}. Nodes not reached yet run what they ran; fix the cause and run the upgrade again, or "shoal fleet upgrade --rollback"`);
      }
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`the ${rec?.Kind ?? started.Kind} is still under way after ${Math.round(timeoutMs / 1000)} s; "shoal fleet upgrade --status" follows it`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

const upgrade: Command = {
  name: 'upgrade',
  summary: 'Replace the shoal executable on every node, one node at a time, tasks kept running',
  usage: '--binary PATH | --url URL --sha256 HEX | --rollback | --status',
  options: [
    { long: 'binary', kind: 'string', value: 'PATH', help: 'the new shoal executable, sent to the manager' },
    { long: 'url', kind: 'string', value: 'URL', help: 'the manager downloads the new executable from there (needs --sha256)' },
    { long: 'sha256', kind: 'string', value: 'HEX', help: "the new executable's SHA-256: refused when it differs" },
    { long: 'parallelism', kind: 'string', value: 'N', help: 'workers restarted at once (default 1; managers always one at a time)' },
    { long: 'rollback', kind: 'bool', help: 'put back the executable every node ran before the last upgrade' },
    { long: 'status', kind: 'bool', help: 'show the last upgrade and where each node stands' },
    { long: 'detach', short: 'd', kind: 'bool', help: 'return once the upgrade has started' },
    { long: 'timeout', kind: 'string', value: 'DURATION', help: 'how long to follow it (default 30m)' },
    FORMAT_OPTION,
  ],
  maxArgs: 0,
  async run(ctx) {
    const a = ctx.args;
    const modes = [a.has('binary'), a.has('url'), a.bool('rollback'), a.bool('status')].filter(Boolean).length;
    if (modes !== 1) throw new UsageError('give one of --binary PATH, --url URL, --rollback or --status');
    const client = ctx.client();
    if (a.bool('status')) {
      const rec = await client.json<UpgradeRecord>('GET', '/shoal/upgrade');
      ctx.io.out(a.str('format') === 'json' ? json(rec) : table(rec));
      return 0;
    }
    const timeoutMs = a.has('timeout') ? parseDuration('timeout', a.str('timeout')!) / 1e6 : 30 * 60_000;
    const parallelism = a.has('parallelism') ? parseCount('parallelism', a.str('parallelism')!, 64) : undefined;
    if (parallelism === 0) throw new UsageError('invalid value "0" for --parallelism: expected 1 or more');
    let started: UpgradeRecord;
    if (a.bool('rollback')) {
      started = await client.json<UpgradeRecord>('POST', '/shoal/upgrade/rollback');
    } else if (a.has('url')) {
      if (!a.has('sha256')) throw new UsageError('--url needs --sha256 HEX: an executable from the network is checked against its digest');
      started = await client.json<UpgradeRecord>('POST', '/shoal/upgrade', { query: { url: a.str('url'), sha256: a.str('sha256'), parallelism }, stream: true });
    } else {
      const path = a.str('binary')!;
      let size: number;
      try {
        const st = statSync(path);
        if (!st.isFile()) throw new Error('not a regular file');
        size = st.size;
      } catch (err) {
        throw new UsageError(`--binary ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      if (size === 0) throw new UsageError(`--binary ${path}: the file is empty`);
      // Without --sha256 the digest of what is read here still checks the transfer.
      const sha256 = a.str('sha256') ?? await sha256Of(path);
      ctx.io.out(`sending ${path} (${(size / 1024 / 1024).toFixed(1)} MiB, sha256 ${sha256.slice(0, 12)}…) to the manager\n`);
      started = await client.json<UpgradeRecord>('POST', '/shoal/upgrade', { query: { sha256, parallelism }, raw: Bun.file(path), stream: true });
    }
    const pending = started.Nodes.filter((n) => n.State === 'pending').length;
    ctx.io.out(`${started.Kind} to shoal ${started.Version} started: ${pending} node(s) to restart, workers first, managers one at a time\n`);
    if (a.bool('detach')) return 0;
    return follow(client, ctx.io, started, timeoutMs, ctx.signal);
  },
};

export const fleetGroup: Group = {
  name: 'fleet',
  summary: "Manage the fleet's shoal executable (rolling upgrade, rollback)",
  commands: [upgrade],
};
