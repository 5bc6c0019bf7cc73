/**
 * NetworkAgent without root: what the agent runs for the host path with a recording runner (nothing
 * is changed on this machine). The rules' text is tested by vip-rules.test.ts; the path itself in
 * namespaces by src/mesh/host-vip.test.ts.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import * as dnsPacket from 'dns-packet';
import type { NetTable } from '../manager/dispatcher/protocol.ts';
import { makeTask } from '../manager/testkit.ts';
import { query } from './dns-testkit.ts';
import type { CmdResult } from './netlink-cmd.ts';
import { NetworkAgent } from './network-agent.ts';
import { deviceNames } from './overlay.ts';
import { waitFor } from './testkit.ts';
import { hostVipChains, hostVipJumps, hostVipRules } from './vip-rules.ts';

const NET = { id: 'net-a', name: 'a', subnet: '10.7.0.0/24', gateway: '10.7.0.1', vni: 4200 };
const table = (services: NetTable['services']): NetTable => ({ networks: [NET], services });

describe('NetworkAgent: a task namespace\'s VIP rules follow the table', () => {
  test('the spread over the table\'s tasks, in its own chain', () => {
    const agent = new NetworkAgent({ underlay: () => undefined, remote: () => [], run: async () => ({ code: 0, stdout: '', stderr: '' }) });
    return agent.setTable(table([{ id: 's1', name: 'web', mode: 'vip', vips: [{ net: NET.id, addr: '10.7.0.2' }], tasks: [{ net: NET.id, addr: '10.7.0.9' }, { net: NET.id, addr: '10.7.0.10' }] }]))
      .then(() => expect(agent.vipRules([NET.id])).toBe([
        '*nat', ':SHOAL-VIP - [0:0]',
        '-A SHOAL-VIP -d 10.7.0.2/32 -m statistic --mode random --probability 0.5000000000 -j DNAT --to-destination 10.7.0.9',
        '-A SHOAL-VIP -d 10.7.0.2/32 -j DNAT --to-destination 10.7.0.10',
        'COMMIT', '',
      ].join('\n')));
  });
});

/**
 * A host whose commands are recorded, not run: the bridge-nf sysctl answers `sysctl`, iptables -C
 * answers "there" for rules added earlier, and every other command succeeds with no output.
 */
function recordingHost(sysctl: string | null) {
  const calls: string[][] = [];
  const restored: string[] = [];
  const rules = new Set<string>();
  const run = async (argv: readonly string[]): Promise<CmdResult> => {
    calls.push([...argv]);
    const ok = (stdout = '') => ({ code: 0, stdout, stderr: '' });
    if (argv[0] === 'cat' && argv[1]!.endsWith('bridge-nf-call-iptables')) {
      return sysctl === null ? { code: 1, stdout: '', stderr: 'No such file or directory' } : ok(`${sysctl}\n`);
    }
    if (argv[0] === 'iptables-restore' && argv.at(-1)!.startsWith('/')) restored.push(readFileSync(argv.at(-1)!, 'utf8'));
    if (argv[0] === 'iptables') {
      const [, , , table, op, ...rest] = argv;
      const key = `${table} ${rest.filter((x) => x !== '1' || op !== '-I').join(' ')}`;
      if (op === '-C') return rules.has(key) ? ok() : { code: 1, stdout: '', stderr: 'Bad rule' };
      if (op === '-I') rules.add(key);
      if (op === '-D') rules.delete(key);
    }
    if (argv[0] === 'ip' && argv.includes('show')) return { code: 1, stdout: '', stderr: 'Device does not exist' };
    return ok();
  };
  return { calls, restored, rules, run };
}

function attachment(addr: string, net = NET) {
  return {
    Network: { ID: net.id, Spec: { Name: net.name }, DriverState: { Name: 'overlay', Options: { 'com.docker.network.driver.overlay.vxlanid_list': String(net.vni) } }, IPAMOptions: { Configs: [{ Subnet: net.subnet, Gateway: net.gateway }] } },
    Addresses: [`${addr}/24`],
  } as any;
}

const agents: NetworkAgent[] = [];
afterEach(async () => {
  while (agents.length) await agents.pop()!.close();
});

describe('NetworkAgent: the host path, commands recorded', () => {
  const svc = (tasks: string[]): NetTable['services'] => [{ id: 's1', name: 'web', mode: 'vip', vips: [{ net: NET.id, addr: '10.7.0.2' }], tasks: tasks.map((addr) => ({ net: NET.id, addr })) }];

  test('with bridged traffic through iptables: the chains (again only when the table changed), the jumps, the VIP on the bridge; removed with the network', async () => {
    const h = recordingHost('1');
    const logs: string[] = [];
    const agent = new NetworkAgent({ underlay: () => '192.168.50.1', remote: () => [], run: h.run, dnsPort: 0, log: (m) => logs.push(m) });
    agents.push(agent);
    const bridge = deviceNames(NET.id).bridge;
    await agent.setTable(table(svc(['10.7.0.9'])));
    const task = makeTask('s1', { ID: 'vm-task-1' });
    task.NetworksAttachments = [attachment('10.7.0.5')];
    await agent.prepare(task, true);
    expect(h.restored).toEqual([hostVipRules(table(svc(['10.7.0.9'])), NET.id, bridge)]);
    for (const jump of hostVipJumps(bridge, NET.subnet)) expect(h.rules.has(jump.join(' '))).toBe(true);
    expect(h.calls).toContainEqual(['ip', 'addr', 'replace', '10.7.0.2/32', 'dev', bridge]);
    // The jumps come after the chains they name.
    const restoreAt = h.calls.findIndex((c) => c[0] === 'iptables-restore');
    const jumpAt = h.calls.findIndex((c) => c[0] === 'iptables' && c[4] === '-I' && c[5] === 'PREROUTING');
    expect(restoreAt).toBeGreaterThan(-1);
    expect(jumpAt).toBeGreaterThan(restoreAt);

    const ipCalls = () => h.calls.filter((c) => c[0] === 'ip' || c[0] === 'bridge').length;
    const before = ipCalls();
    await agent.setTable(table(svc(['10.7.0.9'])));
    expect(h.restored).toHaveLength(1);
    // Nothing changed for the bridge: a table update does not look at it again.
    expect(ipCalls()).toBe(before);
    await agent.setTable(table(svc(['10.7.0.9', '10.7.0.10'])));
    expect(h.restored).toHaveLength(2);
    expect(h.restored[1]).toContain('--probability 0.5000000000 -j DNAT --to-destination 10.7.0.9');

    // The network leaves the cluster and its last task this host: jumps deleted, chains flushed and deleted.
    await agent.release(task.ID);
    await agent.setTable({ networks: [], services: [] });
    expect([...h.rules].filter((r) => r.includes('SHOAL-H'))).toEqual([]);
    for (const c of Object.values(hostVipChains(bridge))) {
      expect(h.calls.some((x) => x[0] === 'iptables' && x[4] === '-F' && x[5] === c)).toBe(true);
      expect(h.calls.some((x) => x[0] === 'iptables' && x[4] === '-X' && x[5] === c)).toBe(true);
    }
    expect(logs.join('\n')).not.toContain('VMs reach services at their tasks');
  });

  test('without br_netfilter: no host path, the log says why', async () => {
    for (const sysctl of [null, '0']) {
      const h = recordingHost(sysctl);
      const logs: string[] = [];
      const agent = new NetworkAgent({ underlay: () => '192.168.50.1', remote: () => [], run: h.run, dnsPort: 0, log: (m) => logs.push(m) });
      agents.push(agent);
      await agent.setTable(table(svc(['10.7.0.9'])));
      const task = makeTask('s1', { ID: `vm-task-${sysctl}` });
      task.NetworksAttachments = [attachment('10.7.0.5')];
      await agent.prepare(task, true);
      expect(h.calls.some((c) => c[0] === 'iptables-restore' && c.length > 2)).toBe(false);
      expect(h.calls.some((c) => c.join(' ').includes('10.7.0.2/32'))).toBe(false);
      expect(logs.join('\n')).toMatch(sysctl === null ? /bridge-nf-call-iptables is missing/ : /bridge-nf-call-iptables is 0, not 1/);
    }
  });
});

/** One A query to `server`:`port` sent from `from` (the address the DNS tells VMs by). */
async function askFrom(from: string, server: string, port: number, name: string): Promise<string[]> {
  let reply: Buffer | null = null;
  const s = await Bun.udpSocket({ hostname: from, port: 0, socket: { data: (_s, d) => void (reply ??= Buffer.from(d)), error: () => {} } });
  try {
    s.send(query(name), port, server);
    await waitFor(() => reply !== null, 'a DNS reply', 3000);
    return ((dnsPacket.decode(reply!).answers ?? []) as { data?: unknown }[]).map((a) => a.data as string);
  } finally {
    s.close();
  }
}

describe('NetworkAgent: what the DNS tells a VM', () => {
  // A network on loopback addresses, so that its DNS server binds here without root: the gateway
  // 127.77.0.1 and the VM 127.77.0.5 are loopback addresses of this namespace.
  const LO = { id: 'net-lo', name: 'lo', subnet: '127.77.0.0/24', gateway: '127.77.0.1', vni: 4201 };
  const services: NetTable['services'] = [{ id: 's1', name: 'web', mode: 'vip', vips: [{ net: LO.id, addr: '127.77.0.2' }], tasks: [{ net: LO.id, addr: '127.77.0.9' }] }];

  for (const [sysctl, expected] of [['1', ['127.77.0.2']], ['0', ['127.77.0.9']]] as const) {
    test(`${sysctl === '1' ? 'with the host path: the VIP, like any task' : 'without it: the task addresses (dnsrr-style)'}`, async () => {
      const h = recordingHost(sysctl);
      const port = await freeUdpPort(LO.gateway);
      const agent = new NetworkAgent({ underlay: () => '192.168.50.1', remote: () => [], run: h.run, dnsPort: port, log: () => {} });
      agents.push(agent);
      await agent.setTable({ networks: [LO], services });
      const task = makeTask('s2', { ID: `vm-${sysctl}` });
      task.NetworksAttachments = [attachment('127.77.0.5', LO)];
      await agent.prepare(task, true);
      // Its main process shares the agent's namespace: a VM.
      await agent.started(task.ID, process.pid);
      expect(await askFrom('127.77.0.5', LO.gateway, port, 'web')).toEqual([...expected]);
      // Another client on the network (a task with rules of its own) gets the VIP either way.
      expect(await askFrom('127.77.0.6', LO.gateway, port, 'web')).toEqual(['127.77.0.2']);
    });
  }
});

async function freeUdpPort(host: string): Promise<number> {
  const s = await Bun.udpSocket({ hostname: host, port: 0 });
  const port = s.port;
  s.close();
  return port;
}
