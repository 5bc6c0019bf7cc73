import { expect, test } from 'bun:test';
import type { LocalTask } from './network-state.ts';
import { applyTaskVipRules } from './task-vip.ts';

const task = (ns: LocalTask['ns']): LocalTask => ({ id: 't1', nets: new Map(), ns, ownNs: false, rules: null, jump: false });

async function warningFor(t: LocalTask): Promise<string[]> {
  const warned: string[] = [];
  await applyTaskVipRules(t, '*nat\nCOMMIT\n', (_key, msg) => warned.push(msg));
  return warned;
}

// A container that stopped before its rules went in is not a host without iptables.
test.skipIf(!Bun.which('nsenter'))('a task whose namespace is gone is said to be gone, not iptables missing', async () => {
  const [msg] = await warningFor(task({ pid: 2 ** 22 + 1 }));
  expect(msg).toContain('task t1: VIP rules: its network namespace is gone');
  expect(msg).not.toContain('not installed');
});

test.skipIf(!Bun.which('ip'))('the same for a named namespace that does not exist', async () => {
  const [msg] = await warningFor(task({ name: `shoal-no-such-ns-${process.pid}` }));
  expect(msg).toContain('its network namespace is gone');
});
