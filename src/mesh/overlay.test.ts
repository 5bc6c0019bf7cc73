/**
 * The overlay plumbing on real kernels: two namespace hosts of the host harness (test/harness) stand
 * in for two hosts, their bridged veths the underlay; each host builds the overlay and puts a "task"
 * namespace (an extra namespace of the harness, off its bridge) on it; task A reaches task B's
 * overlay address over VXLAN. Needs root, iproute2, iptables and VXLAN; skipped with the reason
 * otherwise. Every name carries this run's random tag, and every namespace is deleted afterwards,
 * whatever happened.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { randomBytes } from 'node:crypto';
import { NetnsHosts, netnsUnavailable, tcpEcho, tcpSay, vxlanUnavailable } from '../../test/harness/index.ts';
import { type CmdResult, hostRunner, must } from './netlink-cmd.ts';
import { bridgeMac, deviceNames, macFor, OverlayNetwork } from './overlay.ts';

const TAG = randomBytes(3).toString('hex');
const root = hostRunner();
/** The namespaces, by role: set once the harness has made them. */
const NS = { hostA: '', hostB: '', taskA: '', taskB: '', taskC: '' };
/** The hosts' addresses on the harness's bridge: the underlay. */
const UNDERLAY = { a: '', b: '' };
/** Each host's interface on the underlay (the harness's veth end). */
const UL = 'eth0';
const skip = netnsUnavailable() ?? vxlanUnavailable();
if (skip) console.warn(`skipping overlay namespace tests: ${skip}`);

let lab: NetnsHosts | undefined;

async function links(ns: string): Promise<string[]> {
  const r = await root(['ip', '-n', ns, '-j', 'link', 'show']);
  return (JSON.parse(r.stdout) as { ifname: string }[]).map((l) => l.ifname).sort();
}
const echoServer = (ns: string, host: string, port: number) => tcpEcho(lab!, ns, host, port);
const echoOnce = (ns: string, host: string, port: number, text: string, boundMs?: number): Promise<CmdResult> => tcpSay(lab!, ns, host, port, text, boundMs);

describe.skipIf(!!skip)('OverlayNetwork across two namespace hosts', () => {
  const net = { id: `net-${TAG}`, subnet: '10.231.1.0/24', gateway: '10.231.1.1', vni: 4242 };
  const taskA = { taskId: 'task-a', netns: { name: '' }, address: '10.231.1.3/24' };
  const taskB = { taskId: 'task-b', netns: { name: '' }, address: '10.231.1.4/24' };
  let ovA: OverlayNetwork;
  let ovB: OverlayNetwork;

  beforeAll(async () => {
    lab = await NetnsHosts.create({ hosts: 2, prefix: '192.168.231' });
    const [a, b] = lab.hosts;
    Object.assign(NS, { hostA: a!.netns, hostB: b!.netns, taskA: lab.netns('ta'), taskB: lab.netns('tb'), taskC: lab.netns('tc') });
    Object.assign(UNDERLAY, { a: a!.ip, b: b!.ip });
    taskA.netns.name = NS.taskA;
    taskB.netns.name = NS.taskB;
    ovA = new OverlayNetwork({ ...net, local: UNDERLAY.a }, hostRunner({ name: NS.hostA }));
    ovB = new OverlayNetwork({ ...net, local: UNDERLAY.b }, hostRunner({ name: NS.hostB }));
  });

  afterAll(() => {
    lab?.dispose();
    expect(lab?.leftovers() ?? []).toEqual([]);
  });

  test('task A reaches task B over VXLAN; calling everything again changes nothing', async () => {
    for (let i = 0; i < 2; i++) {
      await Promise.all([ovA.ensure(), ovB.ensure()]);
      await ovA.attach(taskA);
      await ovB.attach(taskB);
      const table = [{ hostAddr: UNDERLAY.a, taskAddr: taskA.address }, { hostAddr: UNDERLAY.b, taskAddr: taskB.address }];
      await ovA.setForwarding(table);
      await ovB.setForwarding(table);
    }
    const { bridge, vxlan } = deviceNames(net.id);
    expect(await links(NS.hostA)).toEqual([bridge, vxlan, 'lo', ovA.vethNames('task-a').host, UL].sort());
    // The bridge's MAC is its own (fixed), not its lowest port's: it stays as ports come and go.
    const brMac = async () => (JSON.parse(await must(hostRunner({ name: NS.hostA }), ['ip', '-j', 'link', 'show', 'dev', bridge])) as { address: string }[])[0]!.address;
    expect(await brMac()).toBe(bridgeMac(net.id, UNDERLAY.a));
    await must(hostRunner({ name: NS.hostA }), ['ip', 'link', 'add', 'lowport', 'address', '00:00:00:00:00:01', 'type', 'veth', 'peer', 'name', 'lowpeer']);
    await must(hostRunner({ name: NS.hostA }), ['ip', 'link', 'set', 'lowport', 'master', bridge]);
    expect(await brMac()).toBe(bridgeMac(net.id, UNDERLAY.a));
    await must(hostRunner({ name: NS.hostA }), ['ip', 'link', 'del', 'lowport']);
    expect(await links(NS.taskB)).toEqual(['lo', `ov${net.vni}`]);
    const fdb = JSON.parse((await must(hostRunner({ name: NS.hostA }), ['bridge', '-j', 'fdb', 'show', 'dev', vxlan]))) as { mac: string; dst?: string }[];
    expect(fdb.filter((f) => f.dst).map((f) => `${f.mac}>${f.dst}`).sort()).toEqual([`00:00:00:00:00:00>${UNDERLAY.b}`, `${macFor('10.231.1.4')}>${UNDERLAY.b}`]);
    await echoServer(NS.taskB, '10.231.1.4', 7007);
    let r: CmdResult | null = null;
    for (let attempt = 0; attempt < 5 && r?.code !== 0; attempt++) r = await echoOnce(NS.taskA, '10.231.1.4', 7007, 'hello over vxlan');
    expect(r).toMatchObject({ code: 0, stdout: 'hello over vxlan' });
    // The gateway address on host A's bridge: the host is reachable from its tasks.
    await echoServer(NS.hostA, net.gateway, 7008);
    expect(await echoOnce(NS.taskA, net.gateway, 7008, 'host')).toMatchObject({ code: 0, stdout: 'host' });
  });

  test('a forwarding table without task B removes its entries; B is unreachable; putting it back restores it', async () => {
    const { vxlan } = deviceNames(net.id);
    await ovA.setForwarding([{ hostAddr: UNDERLAY.a, taskAddr: taskA.address }]);
    const runA = hostRunner({ name: NS.hostA });
    expect(JSON.parse(await must(runA, ['bridge', '-j', 'fdb', 'show', 'dev', vxlan])).filter((f: { dst?: string }) => f.dst)).toEqual([]);
    expect((await must(runA, ['ip', '-j', 'neigh', 'show', 'dev', vxlan])).trim()).toMatch(/^(\[\])?$/);
    expect((await echoOnce(NS.taskA, '10.231.1.4', 7007, 'x', 500)).code).not.toBe(0);
    await ovA.setForwarding([{ hostAddr: UNDERLAY.b, taskAddr: taskB.address }]);
    expect(await echoOnce(NS.taskA, '10.231.1.4', 7007, 'again')).toMatchObject({ code: 0, stdout: 'again' });
  });

  test('a VXLAN device set up differently (another VNI) is replaced by ensure(), with the forwarding table put back', async () => {
    const { vxlan } = deviceNames(net.id);
    const runA = hostRunner({ name: NS.hostA });
    await must(runA, ['ip', 'link', 'del', vxlan]);
    await must(runA, ['ip', 'link', 'add', vxlan, 'type', 'vxlan', 'id', '9', 'dstport', '4789', 'local', UNDERLAY.a]);
    await ovA.ensure();
    const info = JSON.parse(await must(runA, ['ip', '-d', '-j', 'link', 'show', 'dev', vxlan]))[0].linkinfo.info_data;
    expect(info).toMatchObject({ id: net.vni, local: UNDERLAY.a, learning: false, proxy: true });
    expect(await echoOnce(NS.taskA, '10.231.1.4', 7007, 'still')).toMatchObject({ code: 0, stdout: 'still' });
  });

  test('a task namespace given by the PID of a process in it (as an isolated process task is)', async () => {
    const sleeper = lab!.spawn(NS.taskC, ['sleep', '600'], { stdout: 'ignore', stderr: 'inherit' });
    // `ip netns exec` execs: once the PID's namespace is taskC's, the process is in place.
    const inodeOf = async (path: string) => (await root(['stat', '-L', '-c', '%i', path])).stdout.trim();
    const inode = await inodeOf(`/run/netns/${NS.taskC}`);
    for (let i = 0; i < 200 && (await inodeOf(`/proc/${sleeper.pid}/ns/net`)) !== inode; i++) await Bun.sleep(10);
    expect(await inodeOf(`/proc/${sleeper.pid}/ns/net`)).toBe(inode);
    await ovA.attach({ taskId: 'task-c', netns: { pid: sleeper.pid }, address: '10.231.1.5/24' });
    await ovA.attach({ taskId: 'task-c', netns: { pid: sleeper.pid }, address: '10.231.1.5/24' });
    expect(await links(NS.taskC)).toEqual(['lo', `ov${net.vni}`]);
    const table = [{ hostAddr: UNDERLAY.a, taskAddr: taskA.address }, { hostAddr: UNDERLAY.a, taskAddr: '10.231.1.5/24' }, { hostAddr: UNDERLAY.b, taskAddr: taskB.address }];
    await ovA.setForwarding(table);
    await ovB.setForwarding(table);
    expect(await echoOnce(NS.taskC, '10.231.1.4', 7007, 'from c')).toMatchObject({ code: 0, stdout: 'from c' });
    await ovA.detach('task-c');
    expect(await links(NS.taskC)).toEqual(['lo']);
  });

  test('detach and remove leave no device behind, and can be called again', async () => {
    await ovA.detach('task-a');
    await ovA.detach('task-a');
    expect(await links(NS.taskA)).toEqual(['lo']);
    for (let i = 0; i < 2; i++) await Promise.all([ovA.remove(), ovB.remove()]);
    expect(await links(NS.hostA)).toEqual(['lo', UL].sort());
    expect(await links(NS.hostB)).toEqual(['lo', UL].sort());
    expect(await links(NS.taskB)).toEqual(['lo']);
  });

  test('devices a killed daemon left (same VNI, same subnet, another network id) are taken over', async () => {
    const runA = hostRunner({ name: NS.hostA });
    const stale = new OverlayNetwork({ ...net, id: `stale-${TAG}`, local: UNDERLAY.a }, runA);
    await stale.ensure();
    const fresh = new OverlayNetwork({ ...net, id: `fresh-${TAG}`, local: UNDERLAY.a }, runA);
    await fresh.ensure();
    const now = await links(NS.hostA);
    expect(now).toContain(fresh.bridge);
    expect(now).toContain(fresh.vxlan);
    expect(now).not.toContain(stale.bridge);
    expect(now).not.toContain(stale.vxlan);
    await fresh.remove();
    expect(await links(NS.hostA)).toEqual(['lo', UL].sort());
  });
});

describe('overlay names and checks', () => {
  test('device names fit in 15 bytes; MACs follow the address', () => {
    const n = deviceNames('x'.repeat(25));
    expect(n.bridge.length).toBeLessThanOrEqual(15);
    expect(n.vxlan.length).toBeLessThanOrEqual(15);
    expect(macFor('10.0.1.5/24')).toBe('02:42:0a:00:01:05');
    expect(() => new OverlayNetwork({ id: 'n', subnet: '10.0.1.0/24', vni: 0, local: '192.0.2.1' })).toThrow('VNI 0');
    expect(() => new OverlayNetwork({ id: 'n', subnet: '10.0.1.1/24', vni: 5, local: '192.0.2.1' })).toThrow('host bits');
  });
});
