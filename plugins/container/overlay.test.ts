/**
 * Containers on overlay networks against a real Docker Engine: the test plays the worker (it makes
 * the Linux bridges with the gateway address, as OverlayNetwork.ensure does), the container executor
 * binds a Docker network to each and runs the containers at their fixed addresses and MACs.
 * Needs root (bridges) and an engine with the local test image; skipped with the reason otherwise.
 * Every bridge, container and Docker network made here is removed in afterAll (unless
 * SHOAL_TEST_KEEP=1, for a look afterwards; SHOAL_TEST_VERBOSE=1 prints the executor's log).
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TaskContext, TaskNetworkAttachment } from '../../src/executor/contract.ts';
import { pollUntil } from '../../src/executor/logs.ts';
import { macFor } from '../../src/mesh/overlay.ts';
import type { Task } from '../../src/types/index.ts';
import { engineForTests, TEST_IMAGE } from '../../test/fixtures/images/engine.ts';
import type { ContainerController } from './controller.ts';
import { createContainerExecutor } from './index.ts';
import { dockerNetworkName, ensureNetwork, LABEL_NETWORK, networkCreateOptions } from './network.ts';

const engine = await engineForTests();
const isRoot = process.getuid?.() === 0;
const skip = !engine.ok ? `needs a Docker Engine: ${engine.reason}` : !isRoot ? 'needs root (it makes Linux bridges)' : undefined;
if (skip) console.warn(`[container overlay tests skipped] ${skip}`);

const tag = Math.random().toString(16).slice(2, 7);
// Two /24s in 10.230.0.0/12-ish space, random so parallel runs do not collide.
const x = 230 + Math.floor(Math.random() * 10);
const y = Math.floor(Math.random() * 250);
const nets = [
  { id: `ovnet${tag}a0123456789`, name: `ovt${tag}a`, bridge: `shbtest${tag}`, prefix: `10.${x}.${y}` },
  { id: `ovnet${tag}b0123456789`, name: `ovt${tag}b`, bridge: `shbtest${tag}b`, prefix: `10.${x}.${y + 1}` },
] as const;
type Net = (typeof nets)[number];

const attachment = (n: Net, host: number): TaskNetworkAttachment => ({
  networkId: n.id, name: n.name, bridge: n.bridge, subnet: `${n.prefix}.0/24`, gateway: `${n.prefix}.1`,
  address: `${n.prefix}.${host}/24`, mac: macFor(`${n.prefix}.${host}`), mtu: 1450,
});

const logs: string[] = [];
const dirs: string[] = [];
const taskIds: string[] = [];
const sockets: Socket[] = [];

function task(id: string, command: string[]): Task {
  taskIds.push(id);
  return {
    ID: id, Version: { Index: 1 }, CreatedAt: '', UpdatedAt: '', ServiceID: `svc${tag}`, Slot: 1, NodeID: 'n1',
    Spec: { Runtime: 'container', ContainerSpec: { Image: TEST_IMAGE, Command: command, Init: true } },
    Status: { Timestamp: '', State: 'assigned', Message: '' }, DesiredState: 'running',
  };
}

function ctxFor(attachments: TaskNetworkAttachment[]): TaskContext {
  const taskDir = mkdtempSync(join(tmpdir(), 'shoal-ctr-ov-'));
  dirs.push(taskDir);
  return { taskDir, log: (m) => logs.push(m), network: { attachments, dns: [attachments[0]!.gateway] } };
}

async function run(...cmd: string[]): Promise<{ code: number; out: string }> {
  const p = Bun.spawn(cmd, { stdout: 'pipe', stderr: 'pipe' });
  const timer = setTimeout(() => p.kill(), 30_000);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, out: (out + err).trim() };
}
async function must(...cmd: string[]): Promise<string> {
  const r = await run(...cmd);
  if (r.code !== 0) throw new Error(`${cmd.join(' ')}: exit ${r.code}: ${r.out}`);
  return r.out;
}
const dockerExec = (taskId: string, ...cmd: string[]) => run('docker', 'exec', `shoal-${taskId}`, ...cmd);

async function makeBridge(n: Net): Promise<void> {
  await must('ip', 'link', 'add', n.bridge, 'type', 'bridge');
  await must('ip', 'link', 'set', n.bridge, 'mtu', '1450');
  await must('ip', 'addr', 'add', `${n.prefix}.1/24`, 'dev', n.bridge);
  await must('ip', 'link', 'set', n.bridge, 'up');
}

interface LinkInfo { operstate: string; flags: string[]; mtu: number; addr_info: { local: string; prefixlen: number }[] }
async function bridgeState(n: Net): Promise<LinkInfo | undefined> {
  const r = await run('ip', '-j', 'addr', 'show', 'dev', n.bridge);
  return r.code === 0 ? (JSON.parse(r.out) as LinkInfo[])[0] : undefined;
}

const docker = () => (engine as { docker: import('dockerode') }).docker;
const inspectNet = (name: string) => docker().getNetwork(name).inspect().catch(() => undefined);

/** A DNS server on `addr`:53 answering every A question with `answer`; records the questions. */
function dnsResponder(addr: string, answer: string): Promise<{ questions: { name: string; from: string }[] }> {
  const questions: { name: string; from: string }[] = [];
  const sock = createSocket({ type: 'udp4', reuseAddr: true });
  sockets.push(sock);
  sock.on('message', (msg, rinfo) => {
    // Question name: labels from offset 12.
    const labels: string[] = [];
    let i = 12;
    while (i < msg.length && msg[i]! > 0) { labels.push(msg.subarray(i + 1, i + 1 + msg[i]!).toString()); i += 1 + msg[i]!; }
    const qend = i + 5; // zero label + type + class
    const qtype = msg.readUInt16BE(i + 1);
    questions.push({ name: labels.join('.'), from: rinfo.address });
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2); // id
    header.writeUInt16BE(0x8180, 2); // response, recursion desired + available, NOERROR
    header.writeUInt16BE(1, 4);
    const a = qtype === 1;
    header.writeUInt16BE(a ? 1 : 0, 6);
    const rr = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, ...answer.split('.').map(Number)]);
    sock.send(Buffer.concat([header, msg.subarray(12, qend), ...(a ? [rr] : [])]), rinfo.port, rinfo.address);
  });
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(53, addr, () => resolve({ questions }));
  });
}

afterAll(async () => {
  for (const s of sockets) try { s.close(); } catch { /* closed */ }
  if (process.env.SHOAL_TEST_VERBOSE) console.log(logs.join('\n'));
  if (skip || process.env.SHOAL_TEST_KEEP) return;
  for (const id of taskIds) await run('docker', 'rm', '-f', '-v', `shoal-${id}`);
  for (const n of nets) await run('docker', 'network', 'rm', dockerNetworkName({ networkId: n.id, name: n.name }));
  for (const n of nets) await run('ip', 'link', 'del', n.bridge);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe.skipIf(!!skip)('containers on overlay networks', () => {
  const exec = createContainerExecutor();
  const signal = () => AbortSignal.timeout(60_000);
  const httpd = ['httpd', '-f', '-p', '8080', '-h', '/var/www'];

  test('the Docker network is bound to the existing bridge; racing creators share it; a stale one is replaced', async () => {
    for (const n of nets) await makeBridge(n);
    const a = attachment(nets[1], 9);
    const name = dockerNetworkName(a);
    // A leftover of another subnet, unused: replaced.
    await docker().createNetwork({ ...networkCreateOptions(a), IPAM: { Config: [{ Subnet: '10.229.254.0/24' }] }, Options: {} });
    await Promise.all([ensureNetwork(docker(), a, (m) => logs.push(m)), ensureNetwork(docker(), a, (m) => logs.push(m))]);
    const info = await docker().getNetwork(name).inspect();
    expect(info.Driver).toBe('bridge');
    expect(info.IPAM?.Config).toEqual([{ Subnet: a.subnet, Gateway: a.gateway }]);
    expect(info.Options).toMatchObject({ 'com.docker.network.bridge.name': a.bridge, 'com.docker.network.driver.mtu': '1450' });
    expect(info.Labels?.[LABEL_NETWORK]).toBe(a.networkId);
    expect((await docker().listNetworks({ filters: { name: [name] } })).filter((x) => x.Name === name)).toHaveLength(1);
    expect(logs.some((l) => l.includes('subnet 10.229.254.0/24') && l.includes('replacing'))).toBe(true);
    // Docker kept our bridge as it was: address, MTU, up.
    const br = await bridgeState(nets[1]);
    expect(br?.addr_info.filter((x) => x.local.includes('.'))).toEqual([expect.objectContaining({ local: a.gateway, prefixlen: 24 })]);
    expect(br?.mtu).toBe(1450);
    expect(br?.flags).toContain('UP');
    // It added forwarding and masquerading for the subnet (containers reach outside through the host).
    const rules = await must('iptables-save');
    expect(rules).toContain(`-A POSTROUTING -s ${a.subnet} ! -o ${a.bridge} -j MASQUERADE`);
    expect(rules).toContain(`-A FORWARD -i ${a.bridge} -o ${a.bridge} -j ACCEPT`);
  }, 60_000);

  test('a container at its address and MAC, reached from the host, resolving through the gateway', async () => {
    const n = nets[0];
    const a = attachment(n, 5);
    const dns = await dnsResponder(a.gateway, '10.9.8.7');
    const t = task(`ovt${tag}one`, httpd);
    const c = exec.controller(t, ctxFor([a])) as ContainerController;
    await c.prepare(signal());
    await c.start(signal());

    const info = await docker().getContainer(`shoal-${t.ID}`).inspect();
    const ep = info.NetworkSettings.Networks[dockerNetworkName(a)]!;
    expect(ep.IPAddress).toBe(`${n.prefix}.5`);
    expect(ep.IPPrefixLen).toBe(24);
    expect(ep.Gateway).toBe(a.gateway);
    expect(ep.MacAddress).toBe(a.mac);
    expect(Object.keys(info.NetworkSettings.Networks)).toEqual([dockerNetworkName(a)]);
    expect(info.HostConfig.Dns).toEqual([a.gateway]);
    expect(await c.address()).toBe(`${n.prefix}.5`);
    // Its veth is a port of our bridge, with the overlay MTU.
    const ports = JSON.parse(await must('ip', '-j', 'link', 'show', 'master', n.bridge)) as { ifname: string; mtu: number }[];
    expect(ports.length).toBe(1);
    expect(ports[0]!.mtu).toBe(1450);
    expect(await must('docker', 'exec', `shoal-${t.ID}`, 'cat', '/sys/class/net/eth0/mtu')).toBe('1450');

    // The host reaches it through the bridge (httpd may take a moment to listen).
    const body = await pollUntil(async () => {
      try {
        const r = await fetch(`http://${n.prefix}.5:8080/`, { signal: AbortSignal.timeout(2_000) });
        return r.ok ? await r.text() : undefined;
      } catch { return undefined; }
    }, { intervalMs: 50, timeoutMs: 15_000 });
    expect(body).toContain('hello from shoal-test');

    // resolv.conf names Docker's embedded resolver, which forwards to the gateway (HostConfig.Dns).
    const resolv = (await dockerExec(t.ID, 'cat', '/etc/resolv.conf')).out;
    logs.push(`resolv.conf: ${resolv}`);
    expect(resolv).toContain('nameserver 127.0.0.11');
    const look = await dockerExec(t.ID, 'nslookup', 'probe.shoal.test');
    expect(look.out).toContain('10.9.8.7');
    expect(dns.questions.map((q) => q.name)).toContain('probe.shoal.test');
    // The forwarded query leaves from the container's own address (its namespace), not the host's.
    expect(dns.questions.find((q) => q.name === 'probe.shoal.test')?.from).toBe(`${n.prefix}.5`);
  }, 90_000);

  test('a container on two networks reaches the first; remove releases Docker networks, bridges stay', async () => {
    const [n0, n1] = nets;
    const first = exec.controller({ ...task(`ovt${tag}one`, httpd) }, ctxFor([attachment(n0, 5)])) as ContainerController;
    taskIds.pop(); // the same task as the previous test's
    const a0 = attachment(n0, 6);
    const a1 = attachment(n1, 6);
    const t = task(`ovt${tag}two`, httpd);
    const c = exec.controller(t, ctxFor([a0, a1])) as ContainerController;
    await c.prepare(signal());
    await c.prepare(signal()); // repeated: reuses the container, joins nothing twice
    await c.start(signal());
    const info = await docker().getContainer(`shoal-${t.ID}`).inspect();
    const eps = info.NetworkSettings.Networks;
    expect(Object.keys(eps).sort()).toEqual([dockerNetworkName(a0), dockerNetworkName(a1)].sort());
    expect(eps[dockerNetworkName(a0)]!.IPAddress).toBe(`${n0.prefix}.6`);
    expect(eps[dockerNetworkName(a0)]!.MacAddress).toBe(a0.mac);
    expect(eps[dockerNetworkName(a1)]!.IPAddress).toBe(`${n1.prefix}.6`);
    // Docker derives 02:42 + the address for a connected endpoint: the MAC shoal's forwarding assumes.
    expect(eps[dockerNetworkName(a1)]!.MacAddress).toBe(a1.mac);
    expect(await c.address()).toBe(`${n0.prefix}.6`);

    // Container to container over the bridge (this busybox's wget crashes with -T: run() bounds it).
    let last = '';
    const got = await pollUntil(async () => {
      const r = await dockerExec(t.ID, 'wget', '-q', '-O', '-', `http://${n0.prefix}.5:8080/`);
      last = r.out;
      return r.code === 0 ? r.out : undefined;
    }, { intervalMs: 50, timeoutMs: 15_000 });
    if (!got) console.warn(`wget from the second container: ${last}`);
    expect(got).toContain('hello from shoal-test');

    // The first task goes: its network stays for the second.
    await first.remove();
    expect(await first.address()).toBeUndefined();
    expect(await inspectNet(dockerNetworkName(a0))).toBeDefined();
    await c.remove();
    await c.remove(); // idempotent
    expect(await run('docker', 'inspect', `shoal-${t.ID}`).then((r) => r.code)).not.toBe(0);
    expect(await inspectNet(dockerNetworkName(a0))).toBeUndefined();
    expect(await inspectNet(dockerNetworkName(a1))).toBeUndefined();
    for (const n of nets) {
      const br = await bridgeState(n);
      expect(br).toBeDefined();
      expect(br!.flags).toContain('UP');
      expect(br!.addr_info.some((x) => x.local === `${n.prefix}.1`)).toBe(true);
    }
    expect(await must('iptables-save')).not.toContain(n0.bridge);
  }, 90_000);

  test('with a health check: the worker hears the pid (TaskNetwork.started) before start waits for health', async () => {
    const a = attachment(nets[0], 7);
    // Healthy only once /tmp/ready exists, which only the started callback makes: a start that
    // waited for health before calling it would never return (bounded by the signal).
    const t = task(`ovt${tag}hc`, ['sleep', '300']);
    t.Spec.ContainerSpec!.Healthcheck = { Test: ['CMD', 'test', '-f', '/tmp/ready'], Interval: 100e6, Retries: 100 };
    const ctx = ctxFor([a]);
    let startReturned = false;
    const seen: { pid: number; health?: string; returned: boolean; running: boolean }[] = [];
    ctx.network!.started = async (pid) => {
      const info = await docker().getContainer(`shoal-${t.ID}`).inspect();
      seen.push({ pid, health: info.State.Health?.Status, returned: startReturned, running: info.State.Running });
      await must('docker', 'exec', `shoal-${t.ID}`, 'touch', '/tmp/ready');
    };
    const c = exec.controller(t, ctx) as ContainerController;
    await c.prepare(signal());
    await c.start(AbortSignal.timeout(20_000));
    startReturned = true;
    const info = await docker().getContainer(`shoal-${t.ID}`).inspect();
    expect(seen).toEqual([{ pid: info.State.Pid, health: 'starting', returned: false, running: true }]);
    expect(info.State.Health?.Status).toBe('healthy');
    await c.remove();
  }, 60_000);

  test('without ctx.network: Docker\'s default bridge, and address() is the container\'s address there', async () => {
    const t = task(`ovt${tag}dflt`, ['sleep', '300']);
    const taskDir = mkdtempSync(join(tmpdir(), 'shoal-ctr-ov-'));
    dirs.push(taskDir);
    const c = exec.controller(t, { taskDir, log: (m) => logs.push(m) }) as ContainerController;
    await c.prepare(signal());
    await c.start(signal());
    const info = await docker().getContainer(`shoal-${t.ID}`).inspect();
    expect(Object.keys(info.NetworkSettings.Networks)).toEqual(['bridge']);
    expect(info.HostConfig.Dns ?? []).toEqual([]);
    const addr = await c.address();
    expect(addr).toBe(info.NetworkSettings.Networks.bridge!.IPAddress);
    expect(addr).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    await c.remove();
    expect(await c.address()).toBeUndefined();
  }, 60_000);
});
