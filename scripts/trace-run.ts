/**
 * What a worker and a manager of a 1-manager + 1-worker loopback cluster of dist/shoal hold, 5 s
 * after both are ready: VmRSS with its file-backed and anonymous parts, and every mapping of 256 KiB
 * or more from /proc/PID/smaps, largest first. With a `bun build.ts --trace-modules` build and
 *   SHOAL_TRACE_MODULES=/tmp/tr bun scripts/trace-run.ts
 * it also waits for both daemons' module lists (/tmp/tr.<pid>; docs/footprint.md).
 */
import { existsSync, readFileSync } from 'node:fs';
import { Cluster } from '../test/harness/index.ts';

await using c = Cluster.loopback();
const { managers, workers } = await c.boot({ managers: 1, workers: 1 });
const wp = workers[0]!.proc!.pid;
const mp = managers[0]!.proc!.pid;
console.log('manager', mp, 'worker', wp);
await Bun.sleep(5000); // idle: the figures are of a daemon that has settled
for (const [who, pid] of [['worker', wp], ['manager', mp]] as const) {
  let head = '';
  const rows: [number, string][] = [];
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) head = line;
    const m = /^Rss:\s+(\d+) kB/.exec(line);
    if (m && Number(m[1]) >= 256) rows.push([Number(m[1]), head.replace(/\s+/g, ' ')]);
  }
  console.log(who, readFileSync(`/proc/${pid}/status`, 'utf8').match(/(VmRSS|RssAnon|RssFile):.*/g)!.join(' '));
  for (const [kb, h] of rows.sort((a, b) => b[0] - a[0])) console.log(String(kb).padStart(8), 'kB', h.slice(0, 140));
}
const prefix = process.env.SHOAL_TRACE_MODULES;
if (prefix) {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && !(existsSync(`${prefix}.${wp}`) && existsSync(`${prefix}.${mp}`))) await Bun.sleep(200);
  console.log(`module lists: ${prefix}.${wp} (worker), ${prefix}.${mp} (manager)`);
}
