/**
 * The host path for service VIPs, in namespaces: two namespace hosts of the host harness
 * (test/harness), each with a real NetworkAgent; process tasks (namespaces the agents make) as
 * backends on host A and on host B; and, standing in for a VM, a plain namespace (an extra one of the
 * harness) on host A's bridge with no rules of its own, whose task the agent sees start in its own
 * namespace (as a VM's QEMU does). The stand-in reaches
 * a VIP whose task is on its host, one whose task is on the other host, one whose only task is
 * itself (hairpin: masqueraded, its port in hairpin mode), and a VIP without tasks times out. ARP
 * for a VIP is answered by its own host's bridge, never by the other's. The network's removal takes
 * the rules, chains and addresses away. Root only; everything carries the run's tag and is deleted.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { randomBytes } from 'node:crypto';
import { NetnsHosts, requireNetns, vxlanUnavailable } from '../../test/harness/index.ts';
import type { NetTable } from '../manager/dispatcher/protocol.ts';
import { makeTask } from '../manager/testkit.ts';
import type { Task } from '../types/index.ts';
import { type CmdResult, hostRunner, must } from './netlink-cmd.ts';
import { NetworkAgent, sandboxName } from './network-agent.ts';
import { hostVipChains } from './vip-rules.ts';
import { bridgeMac, deviceNames, type ForwardingEntry, OverlayNetwork } from './overlay.ts';

const TAG = randomBytes(3).toString('hex');
const root = hostRunner();
const skip = requireNetns(vxlanUnavailable(), Bun.which('iptables-restore') ? null : 'needs iptables (apt-get install iptables)');
if (skip) console.warn(`skipping the host VIP namespace test: ${skip}`);

/** The two hosts (namespace, underlay address) and the VM's stand-in: set once the harness has made them. */
const HOSTS = { a: { ns: '', addr: '' }, b: { ns: '', addr: '' } };
let VM_NS = '';
let lab: NetnsHosts | undefined;
const NET = { id: `hv-${TAG}`, name: 'hv', subnet: '10.232.5.0/24', gateway: '10.232.5.1', vni: 4343 };
const ADDR = { vm: '10.232.5.5', near: '10.232.5.7', far: '10.232.5.8' };
const VIP = { near: '10.232.5.2', far: '10.232.5.3', self: '10.232.5.4', none: '10.232.5.9' };
const PORT = 7300;

const agents: NetworkAgent[] = [];

function task(id: string, addr: string): Task {
  const t = makeTask('svc', { ID: `${TAG}-${id}`, Spec: { Runtime: 'process' } });
  t.NetworksAttachments = [{
    Network: { ID: NET.id, Spec: { Name: NET.name }, DriverState: { Name: 'overlay', Options: { 'com.docker.network.driver.overlay.vxlanid_list': String(NET.vni) } }, IPAMOptions: { Configs: [{ Subnet: NET.subnet, Gateway: NET.gateway }] } },
    Addresses: [`${addr}/24`],
  } as any];
  return t;
}

const table: NetTable = {
  networks: [{ id: NET.id, name: NET.name, subnet: NET.subnet, gateway: NET.gateway, vni: NET.vni }],
  services: [
    { id: 'near', name: 'near', mode: 'vip', vips: [{ net: NET.id, addr: VIP.near }], tasks: [{ net: NET.id, addr: ADDR.near }] },
    { id: 'far', name: 'far', mode: 'vip', vips: [{ net: NET.id, addr: VIP.far }], tasks: [{ net: NET.id, addr: ADDR.far }] },
    { id: 'self', name: 'self', mode: 'vip', vips: [{ net: NET.id, addr: VIP.self }], tasks: [{ net: NET.id, addr: ADDR.vm }] },
    { id: 'none', name: 'none', mode: 'vip', vips: [{ net: NET.id, addr: VIP.none }], tasks: [] },
  ],
};

/** A server in `ns` that answers every connection with its name and the address it saw. */
async function whoServer(ns: string, name: string): Promise<void> {
  const code = `Bun.listen({ hostname: '0.0.0.0', port: ${PORT}, socket: { data(s) { s.write(${JSON.stringify(name)} + ' ' + s.remoteAddress); s.end(); } } }); console.log('listening');`;
  const p = lab!.spawn(ns, [process.execPath, '-e', code], { stdout: 'pipe', stderr: 'inherit' });
  const reader = (p.stdout as ReadableStream<Uint8Array>).getReader();
  const { value } = await Promise.race([reader.read(), Bun.sleep(10_000).then(() => ({ value: undefined }))]);
  reader.releaseLock();
  if (!value || !new TextDecoder().decode(value).includes('listening')) throw new Error(`server in ${ns} did not start`);
}

/** One connection from `ns` to `host`: exit 0 and what answered, 4 when nothing did within the bound. */
function who(ns: string, host: string, boundMs = 3000): Promise<CmdResult> {
  const code = `const t = setTimeout(() => process.exit(4), ${boundMs});
    await Bun.connect({ hostname: ${JSON.stringify(host)}, port: ${PORT}, socket: {
      open(s) { s.write('?'); },
      data(s, d) { process.stdout.write(d.toString()); clearTimeout(t); s.end(); process.exit(0); },
      connectError() { process.exit(3); }, error() { process.exit(2); } } });`;
  return hostRunner({ name: ns })([process.execPath, '-e', code]);
}

async function iptablesSave(ns: string): Promise<string> {
  return must(hostRunner({ name: ns }), ['iptables-save']);
}

afterAll(async () => {
  for (const a of agents) await a.close({ removeIdle: true }).catch(() => {});
  for (const n of (await root(['ip', 'netns', 'list'])).stdout.split('\n')) {
    const name = n.split(' ')[0]!;
    if (name.startsWith('shtask-') && name.includes(TAG)) await root(['ip', 'netns', 'del', name]);
  }
  lab?.dispose();
  expect(lab?.leftovers() ?? []).toEqual([]);
});

describe.skipIf(!!skip)('service VIPs through the host (a client without rules of its own, as a VM)', () => {
  const vmTask = task('vm', ADDR.vm);
  const nearTask = task('near', ADDR.near);
  const farTask = task('far', ADDR.far);
  const logs: string[] = [];
  let agentA: NetworkAgent;
  let agentB: NetworkAgent;

  beforeAll(async () => {
    lab = await NetnsHosts.create({ hosts: 2, prefix: '192.168.235' });
    for (const [h, host] of [[HOSTS.a, lab.hosts[0]!], [HOSTS.b, lab.hosts[1]!]] as const) Object.assign(h, { ns: host.netns, addr: host.ip });
    VM_NS = lab.netns('vm');
    // What gossip would say: each task address behind its host.
    const remote = (): ForwardingEntry[] => [
      { hostAddr: HOSTS.a.addr, taskAddr: ADDR.vm }, { hostAddr: HOSTS.a.addr, taskAddr: ADDR.near }, { hostAddr: HOSTS.b.addr, taskAddr: ADDR.far },
    ];
    [agentA, agentB] = [HOSTS.a, HOSTS.b].map((h) => {
      const a = new NetworkAgent({ underlay: () => h.addr, remote, run: hostRunner({ name: h.ns }), log: (m) => logs.push(m) });
      agents.push(a);
      return a;
    }) as [NetworkAgent, NetworkAgent];
    for (const a of agents) await a.setTable(table);
    await agentA.prepare(nearTask, false);
    await agentB.prepare(farTask, false);
    await agentA.prepare(vmTask, true);
    // The stand-in VM: a namespace on host A's bridge, addressed as the task, no rules of its own.
    // A VM's NIC is a tap, which the agent puts in hairpin mode; this veth gets it from the test.
    const ov = new OverlayNetwork({ id: NET.id, subnet: NET.subnet, gateway: NET.gateway, vni: NET.vni, local: HOSTS.a.addr }, hostRunner({ name: HOSTS.a.ns }));
    await ov.attach({ taskId: vmTask.ID, netns: { name: VM_NS }, address: `${ADDR.vm}/24`, ifname: 'eth0' });
    await must(hostRunner({ name: VM_NS }), ['ip', 'route', 'replace', 'default', 'via', NET.gateway]);
    await must(hostRunner({ name: HOSTS.a.ns }), ['bridge', 'link', 'set', 'dev', ov.vethNames(vmTask.ID).host, 'hairpin', 'on']);
    // And a tap on the bridge, as the VM executor makes one: the agent turns its hairpin on.
    await must(hostRunner({ name: HOSTS.a.ns }), ['ip', 'tuntap', 'add', 'dev', 'shtap0', 'mode', 'tap']);
    await must(hostRunner({ name: HOSTS.a.ns }), ['ip', 'link', 'set', 'shtap0', 'master', ov.bridge]);
    // Its task's main process shares the agent's namespace (here: this test's), as a VM's QEMU does.
    await agentA.started(vmTask.ID, process.pid);
    await whoServer(sandboxName(nearTask.ID), 'near');
    await whoServer(sandboxName(farTask.ID), 'far');
    await whoServer(VM_NS, 'vm');
  }, 60_000);

  test('the bridge answers for the VIPs; the VM\'s tap is in hairpin mode; this kernel passes bridged traffic to iptables', async () => {
    const { bridge } = deviceNames(NET.id);
    const addrs = await must(hostRunner({ name: HOSTS.a.ns }), ['ip', '-br', 'addr', 'show', 'dev', bridge]);
    for (const v of Object.values(VIP)) expect(addrs).toContain(`${v}/32`);
    expect(await must(hostRunner({ name: HOSTS.a.ns }), ['bridge', '-d', 'link', 'show', 'dev', 'shtap0'])).toMatch(/hairpin on/);
    expect(logs.join('\n')).not.toContain('VMs reach services at their tasks');
  });

  test('a VIP whose task is on the same host: reached, and the task sees the client\'s own address', async () => {
    expect(await who(VM_NS, VIP.near)).toMatchObject({ code: 0, stdout: `near ${ADDR.vm}` });
  });

  test('a VIP whose task is on the other host: reached over VXLAN, the reply translated back on the way in', async () => {
    expect(await who(VM_NS, VIP.far)).toMatchObject({ code: 0, stdout: `far ${ADDR.vm}` });
    // ARP for the VIP was answered by host A's bridge (host B's bridge holds the same VIPs, and the
    // VXLAN devices never carry ARP: they answer it from their own tables).
    const neigh = await must(hostRunner({ name: VM_NS }), ['ip', 'neigh', 'show', VIP.far]);
    expect(neigh).toContain(bridgeMac(NET.id, HOSTS.a.addr));
    expect(neigh).not.toContain(bridgeMac(NET.id, HOSTS.b.addr));
  });

  test('a VIP whose only task is the client itself: hairpin, masqueraded to the gateway', async () => {
    expect(await who(VM_NS, VIP.self)).toMatchObject({ code: 0, stdout: `vm ${NET.gateway}` });
  });

  test('a VIP without a running task is not answered by the host (times out, as from a task namespace)', async () => {
    // The host listens on the VIP's port at every address: without the drop, it would answer.
    const hostSide = lab!.spawn(HOSTS.a.ns, [process.execPath, '-e', `Bun.listen({ hostname: '0.0.0.0', port: ${PORT}, socket: { data(s) { s.write('host'); s.end(); } } });`], { stdout: 'ignore', stderr: 'inherit' });
    await expect(waitForListen(HOSTS.a.ns)).resolves.toBe(true);
    expect(await who(VM_NS, NET.gateway)).toMatchObject({ code: 0, stdout: 'host' });
    expect((await who(VM_NS, VIP.none, 1000)).code).toBe(4);
    hostSide.kill();
  });

  test('a client with rules of its own (a process task on host A) still reaches the VIPs through them', async () => {
    expect(await who(sandboxName(nearTask.ID), VIP.far)).toMatchObject({ code: 0, stdout: `far ${ADDR.near}` });
  });

  test('the network leaves the cluster: jumps, chains and addresses go with it', async () => {
    for (const t of [vmTask, nearTask]) await agentA.release(t.ID);
    await agentB.release(farTask.ID);
    for (const a of [agentA, agentB]) await a.setTable({ networks: [], services: [] });
    const chains = Object.values(hostVipChains(deviceNames(NET.id).bridge));
    for (const h of [HOSTS.a, HOSTS.b]) {
      const saved = await iptablesSave(h.ns);
      for (const c of chains) expect(saved).not.toContain(c);
      expect(saved).not.toContain('shoal overlay');
      expect(await links(h.ns)).not.toContain(deviceNames(NET.id).bridge);
    }
  });
});

async function links(ns: string): Promise<string[]> {
  const r = await root(['ip', '-n', ns, '-j', 'link', 'show']);
  return (JSON.parse(r.stdout) as { ifname: string }[]).map((l) => l.ifname).sort();
}

/** Whether something listens on PORT in `ns` (bounded). */
async function waitForListen(ns: string): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const r = await hostRunner({ name: ns })(['ss', '-Hltn', `sport = :${PORT}`]);
    if (r.stdout.trim()) return true;
    await Bun.sleep(50);
  }
  return false;
}
