/**
 * Service VIPs (issue 6: "choose the mechanism, measure it, and write down why"): what kernel DNAT
 * in the client task's namespace (NetworkAgent's SHOAL-VIP chain) costs against reaching a task at
 * its overlay address directly, and against the alternative we rejected, a userspace relay (the
 * IngressProxy) on an address of the client host's bridge. All in the same run.
 *
 * Two namespace hosts of the host harness (test/harness; their veths on its bridge are the
 * underlay), the overlay built by NetworkAgent as a worker does (bridge + VXLAN, a process sandbox
 * per task, VIP rules in the client's namespace). Host A runs the client task (wrk, inside its
 * namespace via `ip netns exec`) and the relay; host B runs three backend tasks, each nginx with one
 * worker returning a fixed 200 (as bench/mesh.ts).
 *
 *   direct   wrk → backend 1's overlay address
 *   vip1     wrk → VIP of a service with backend 1 only (one DNAT rule)
 *   vip3     wrk → VIP of a service with backends 1-3 (three rules, statistic --mode random spread)
 *   relay    wrk → IngressProxy on host A (an address on A's bridge) → backend 1
 *
 * Per target: requests/s at -c64 (keep-alive), p50/p99 at -c1, and new connections/s at -c64 with
 * `Connection: close` (one TCP connection per request: DNAT's per-connection conntrack work shows
 * there, if anywhere). Rotating order, several rounds, medians. VIP_BENCH_SECONDS (default 2),
 * VIP_BENCH_ROUNDS (5). Needs root, iproute2, iptables, wrk and nginx; skips and says why without.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Subprocess } from 'bun';
import type { NetTable } from '../src/manager/dispatcher/protocol.ts';
import { hostRunner, must } from '../src/mesh/netlink-cmd.ts';
import { NetworkAgent, sandboxName } from '../src/mesh/network-agent.ts';
import type { ForwardingEntry } from '../src/mesh/overlay.ts';
import { type Task, VXLAN_OPTION } from '../src/types/index.ts';
import { NetnsHosts, netnsUnavailable, vxlanUnavailable } from '../test/harness/index.ts';
import { type Figure, report } from './lib.ts';

const SUBNET = '10.231.0.0/24';
const GATEWAY = '10.231.0.1';
const VIP1 = '10.231.0.2';
const VIP3 = '10.231.0.3';
const CLIENT = '10.231.0.10';
const BACKENDS = ['10.231.0.21', '10.231.0.22', '10.231.0.23'];
const RELAY = '10.231.0.250';
const RELAY_PORT = 8080;
const UNDERLAY_PREFIX = '192.168.232';
const VNI = 4231;

interface WrkResult { rps: number; p50Us: number; p99Us: number; errors: number }

function toUs(v: string, unit: string): number {
  const x = Number(v);
  return unit === 'us' ? x : unit === 'ms' ? x * 1e3 : unit === 's' ? x * 1e6 : NaN;
}

function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p50 = /^\s+50%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out);
  if (!rps || !p50 || !p99) throw new Error(`cannot read wrk's output:\n${out}`);
  if (/Non-2xx/.test(out)) throw new Error(`wrk saw non-2xx answers:\n${out}`);
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = se ? Number(se[1]) + Number(se[3]) + Number(se[4]) : 0; // read errors: wrk counts the server's close as one
  return { rps: Number(rps[1]), p50Us: toUs(p50[1]!, p50[2]!), p99Us: toUs(p99[1]!, p99[2]!), errors };
}

async function wrkIn(ns: string, url: string, connections: number, seconds: number, close = false): Promise<WrkResult> {
  const argv = ['ip', 'netns', 'exec', ns, 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...(close ? ['-H', 'Connection: close'] : []), url];
  const p = Bun.spawn(argv, { stdout: 'pipe', stderr: 'pipe' });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`wrk exited ${code}: ${err}`);
  return parseWrk(out);
}

export function skipReason(): string | null {
  const why = netnsUnavailable() ?? vxlanUnavailable();
  if (why) return why;
  for (const [bin, pkg] of [['iptables', 'iptables'], ['iptables-restore', 'iptables'], ['wrk', 'wrk'], ['nginx', 'nginx']] as const) {
    if (!Bun.which(bin)) return `${bin} not found (apt-get install -y ${pkg})`;
  }
  return null;
}

function attachment(address: string) {
  return {
    Network: {
      ID: 'bench',
      Spec: { Name: 'bench' },
      IPAMOptions: { Configs: [{ Subnet: SUBNET, Gateway: GATEWAY }] },
      DriverState: { Name: 'overlay', Options: { [VXLAN_OPTION]: String(VNI) } },
    },
    Addresses: [`${address}/24`],
  };
}

function fakeTask(id: string, address: string): Task {
  return { ID: id, NetworksAttachments: [attachment(address)] } as unknown as Task;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function waitHttp(ns: string, host: string, port: number, what: string): Promise<void> {
  const code = `for (let i = 0; i < 300; i++) { try { const r = await fetch('http://${host}:${port}/'); if (r.ok) process.exit(0); } catch {} await Bun.sleep(20); } process.exit(1);`;
  const r = await hostRunner({ name: ns })([process.execPath, '-e', code]);
  if (r.code !== 0) throw new Error(`${what} never answered at ${host}:${port} from ${ns}`);
}

type Name = 'direct' | 'vip1' | 'vip3' | 'relay';

export async function run(): Promise<{ figures: Figure[]; skipped?: string; raw?: unknown }> {
  console.log('vip (service VIPs: kernel DNAT in the client namespace vs direct vs a userspace relay, over VXLAN)');
  const skip = skipReason();
  if (skip) {
    console.log(`  skipped: ${skip}`);
    return { figures: [], skipped: skip };
  }
  const seconds = Number(process.env.VIP_BENCH_SECONDS ?? 2);
  const rounds = Number(process.env.VIP_BENCH_ROUNDS ?? 5);
  const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-vip-'));
  const children: Subprocess[] = [];
  const agents: NetworkAgent[] = [];
  const sandboxes: string[] = [];
  let net: NetnsHosts | undefined;
  try {
    net = await NetnsHosts.create({ hosts: 2, prefix: UNDERLAY_PREFIX });
    const hosts = net.hosts.map((h) => h.netns);
    const underlay = net.hosts.map((h) => h.ip);

    const tag = net.id;
    const client = fakeTask(`vipbench-${tag}-client`, CLIENT);
    const backends = BACKENDS.map((a, i) => fakeTask(`vipbench-${tag}-web${i + 1}`, a));
    const table: NetTable = {
      networks: [{ id: 'bench', name: 'bench', subnet: SUBNET, gateway: GATEWAY, vni: VNI }],
      services: [
        { id: 'web1', name: 'web1', mode: 'vip', vips: [{ net: 'bench', addr: VIP1 }], tasks: [{ net: 'bench', addr: BACKENDS[0]! }] },
        { id: 'web3', name: 'web3', mode: 'vip', vips: [{ net: 'bench', addr: VIP3 }], tasks: BACKENDS.map((addr) => ({ net: 'bench', addr })) },
      ],
    };
    // What gossip would say: each task address behind its host, plus the relay's address on A's bridge.
    const entries: ForwardingEntry[] = [
      { hostAddr: underlay[0]!, taskAddr: CLIENT },
      ...BACKENDS.map((taskAddr) => ({ hostAddr: underlay[1]!, taskAddr })),
    ];
    const byHost = hosts.map((ns, i) => {
      const a = new NetworkAgent({ underlay: () => underlay[i], remote: () => entries, run: hostRunner({ name: ns }), dnsPort: 0 });
      agents.push(a);
      return a;
    });
    for (const a of byHost) await a.setTable(table);
    await byHost[0]!.prepare(client, false);
    for (const b of backends) await byHost[1]!.prepare(b, false);
    sandboxes.push(...[client, ...backends].map((t) => sandboxName(t.ID)));
    const clientNs = sandboxName(client.ID);

    // The relay's own address on host A's bridge (the gateway address is on every host's bridge, so
    // it cannot be a source across hosts), the source of what A sends into the subnet; host B
    // learns it as it learns a task address.
    const inA = hostRunner({ name: hosts[0]! });
    const bridge = byHost[0]!.networks()[0]!.bridge;
    await must(inA, ['ip', 'addr', 'add', `${RELAY}/32`, 'dev', bridge]);
    await must(inA, ['ip', 'route', 'replace', SUBNET, 'dev', bridge, 'src', RELAY]);
    const link = JSON.parse(await must(inA, ['ip', '-j', 'link', 'show', bridge])) as { address: string }[];
    entries.push({ hostAddr: underlay[0]!, taskAddr: RELAY, mac: link[0]!.address });
    await byHost[1]!.refreshForwarding();

    for (const [i, b] of backends.entries()) {
      const name = `backend${i + 1}`;
      const conf = join(dir, `${name}.conf`);
      writeFileSync(
        conf,
        [
          'worker_processes 1;',
          `pid ${join(dir, name)}.pid;`,
          `error_log ${join(dir, name)}.err warn;`,
          'events { worker_connections 4096; }',
          `http { access_log off; client_body_temp_path ${dir}/${name}-body; proxy_temp_path ${dir}/${name}-proxy; fastcgi_temp_path ${dir}/${name}-fcgi; uwsgi_temp_path ${dir}/${name}-uwsgi; scgi_temp_path ${dir}/${name}-scgi;`,
          `  keepalive_requests 1000000;`,
          `  server { listen ${BACKENDS[i]}:80 reuseport; location / { return 200 "ok\\n"; } } }`,
        ].join('\n'),
      );
      children.push(Bun.spawn(['ip', 'netns', 'exec', sandboxName(b.ID), 'nginx', '-p', dir, '-c', conf, '-g', 'daemon off;'], { stdout: 'ignore', stderr: 'inherit' }));
    }
    const relay = Bun.spawn(['ip', 'netns', 'exec', hosts[0]!, process.execPath, join(import.meta.dir, 'mesh-proxy.ts'), `${BACKENDS[0]}:80`, RELAY, String(RELAY_PORT)], { stdout: 'pipe', stderr: 'inherit' });
    children.push(relay);
    const first = new TextDecoder().decode((await relay.stdout.getReader().read()).value);
    if (!/ready \d+/.test(first)) throw new Error(`relay did not start: ${first}`);

    const targets: Record<Name, string> = {
      direct: `http://${BACKENDS[0]}:80/`,
      vip1: `http://${VIP1}:80/`,
      vip3: `http://${VIP3}:80/`,
      relay: `http://${RELAY}:${RELAY_PORT}/`,
    };
    for (const b of BACKENDS) await waitHttp(clientNs, b, 80, 'backend');
    for (const [n, url] of Object.entries(targets)) await waitHttp(clientNs, new URL(url).hostname, Number(new URL(url).port || 80), n);

    const names = Object.keys(targets) as Name[];
    const runs = Object.fromEntries(names.map((n) => [n, { rps: [] as number[], p50Us: [] as number[], p99Us: [] as number[], connPerSec: [] as number[], closeErrors: [] as number[] }])) as Record<
      Name,
      { rps: number[]; p50Us: number[]; p99Us: number[]; connPerSec: number[]; closeErrors: number[] }
    >;
    for (let round = 0; round < rounds; round++) {
      const order = names.map((_, i) => names[(i + round) % names.length]!);
      const line: string[] = [];
      for (const name of order) {
        const load = await wrkIn(clientNs, targets[name], 64, seconds);
        const latency = await wrkIn(clientNs, targets[name], 1, seconds);
        const conns = await wrkIn(clientNs, targets[name], 64, seconds, true);
        if (load.errors || latency.errors) throw new Error(`wrk saw socket errors against ${name}`);
        const r = runs[name];
        r.rps.push(load.rps);
        r.p50Us.push(latency.p50Us);
        r.p99Us.push(latency.p99Us);
        r.connPerSec.push(conns.rps);
        r.closeErrors.push(conns.errors);
        line.push(`${name} ${(load.rps / 1000).toFixed(1)}k/${latency.p50Us}µs/${(conns.rps / 1000).toFixed(1)}kc`);
      }
      console.log(`  round ${round + 1}: ${line.join('  ')}`);
    }
    // Where the VIP rules sent connections (packets per DNAT rule: the spread as it came out).
    const counters = (await must(hostRunner({ name: clientNs }), ['iptables', '-w', '-t', 'nat', '-L', 'SHOAL-VIP', '-n', '-v', '-x']))
      .split('\n')
      .filter((l) => l.includes('DNAT'))
      .map((l) => l.trim().split(/\s+/))
      .map((f) => ({ packets: Number(f[0]), rule: f.slice(2).join(' ') }));
    const spread = counters.filter((c) => c.rule.includes(VIP3)).map((c) => c.packets);
    console.log(`  VIP over 3 backends: new connections per DNAT rule ${spread.join(' / ')}`);
    const m = Object.fromEntries(
      names.map((n) => [n, { rps: median(runs[n].rps), p50Us: median(runs[n].p50Us), p99Us: median(runs[n].p99Us), connPerSec: median(runs[n].connPerSec) }]),
    ) as Record<Name, { rps: number; p50Us: number; p99Us: number; connPerSec: number }>;
    const label: Record<Name, string> = {
      direct: 'direct to the task address',
      vip1: 'VIP, DNAT to 1 backend',
      vip3: 'VIP, DNAT spread over 3',
      relay: 'userspace relay (IngressProxy)',
    };
    const rel = (n: Name, k: 'rps' | 'connPerSec') => (n === 'direct' ? 'ceiling' : `${(m[n][k] / m.direct[k]).toFixed(2)}× direct`);
    const added = (n: Name) => m[n].p50Us - m.direct.p50Us;
    const signed = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(0)}`;
    console.log(`  medians of ${rounds} rounds, ${seconds} s per wrk run (wrk inside the client task's namespace, backends across VXLAN):`);
    const figures: Figure[] = [];
    for (const n of names) figures.push(report({ name: `HTTP rps (c64): ${label[n]}`, value: Math.round(m[n].rps), unit: 'req/s', anchor: rel(n, 'rps') }));
    for (const n of names) figures.push(report({ name: `new conn/s (c64, close): ${label[n]}`, value: Math.round(m[n].connPerSec), unit: 'conn/s', anchor: rel(n, 'connPerSec') }));
    for (const n of names) {
      figures.push(
        report({ name: `p50 (c1): ${label[n]}`, value: m[n].p50Us, unit: 'µs', anchor: n === 'direct' ? 'direct' : `${signed(added(n))} µs over direct` }),
      );
    }
    for (const n of names) figures.push(report({ name: `p99 (c1): ${label[n]}`, value: Math.round(m[n].p99Us), unit: 'µs' }));
    console.log('\n  | target | rps (c64) | new conn/s (c64, close) | p50 (c1) | p50 added | p99 (c1) |');
    console.log('  | --- | --- | --- | --- | --- | --- |');
    for (const n of names) {
      console.log(
        `  | ${label[n]} | ${Math.round(m[n].rps)} (${rel(n, 'rps')}) | ${Math.round(m[n].connPerSec)} (${rel(n, 'connPerSec')}) | ${m[n].p50Us} µs | ${n === 'direct' ? '—' : `${signed(added(n))} µs`} | ${Math.round(m[n].p99Us)} µs |`,
      );
    }
    return { figures, raw: { seconds, rounds, medians: m, runs, vipRuleCounters: counters } };
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => c.exited));
    for (const a of agents) await a.close();
    for (const s of sandboxes) await hostRunner()(['ip', 'netns', 'del', s]);
    net?.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await run();
