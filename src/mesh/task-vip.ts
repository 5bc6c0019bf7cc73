/**
 * A task namespace's VIP rules written into it (kernel DNAT in the task's own namespace; see
 * docs/mesh.md for why not a userspace proxy or IPVS). The rules' text comes from vip-rules.ts.
 */
import { errorMessage } from '../lib/errors.ts';
import { nsPrefix } from './netlink-cmd.ts';
import type { LocalTask } from './network-state.ts';
import { TASK_VIP_CHAIN } from './vip-rules.ts';

/**
 * Write `rules` into the task's namespace, unless they are what was last written there, and make
 * sure its nat OUTPUT jumps to them. A failure is reported through `warn` (once per task), not thrown:
 * the task runs without VIPs rather than not at all.
 */
export async function applyTaskVipRules(t: LocalTask, rules: string, warn: (key: string, msg: string) => void): Promise<void> {
  if (!t.ns) return;
  if (rules === t.rules && t.jump) return;
  const prefix = nsPrefix(t.ns);
  try {
    const r = await spawnIn([...prefix, 'iptables-restore', '-w', '--noflush'], rules);
    if (r.code !== 0) throw new Error(`iptables-restore: ${r.stderr.trim()}`);
    t.rules = rules;
    if (!t.jump) {
      const check = await spawnIn([...prefix, 'iptables', '-w', '-t', 'nat', '-C', 'OUTPUT', '-j', TASK_VIP_CHAIN]);
      if (check.code !== 0) {
        const add = await spawnIn([...prefix, 'iptables', '-w', '-t', 'nat', '-I', 'OUTPUT', '1', '-j', TASK_VIP_CHAIN]);
        if (add.code !== 0) throw new Error(`iptables: ${add.stderr.trim()}`);
      }
      t.jump = true;
    }
  } catch (e) {
    const text = errorMessage(e);
    // nsenter's own "cannot open /proc/PID/ns/net: No such file…" means the task has already gone.
    const msg = /nsenter: cannot open|Cannot open network namespace/.test(text) ? `its network namespace is gone (the task ended): ${text}`
      : /ENOENT|not found|No such file/i.test(text) ? 'iptables is not installed: service VIPs do not route (names in dnsrr mode still resolve)' : text;
    warn(`vip:${t.id}`, `task ${t.id}: VIP rules: ${msg}`);
  }
}

async function spawnIn(argv: string[], stdin?: string): Promise<{ code: number; stderr: string }> {
  try {
    const p = Bun.spawn(argv, { stdin: stdin === undefined ? 'ignore' : new TextEncoder().encode(stdin), stdout: 'ignore', stderr: 'pipe', timeout: 10_000 });
    const [stderr, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
    return { code, stderr };
  } catch (e) {
    return { code: 127, stderr: errorMessage(e) };
  }
}
