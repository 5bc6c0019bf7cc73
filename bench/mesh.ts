/**
 * The ingress routing mesh against nginx's stream proxy (issue 6, item 7): HTTP requests per second and
 * added latency through each, against the same backend reached directly, with the same load generator,
 * in the same run.
 *
 * Needs Debian's nginx with the stream module, and wrk. The bench installs nothing; CI installs:
 *   apt-get install -y nginx libnginx-mod-stream wrk
 * (Debian 12 ships the stream proxy only as that dynamic module). Missing any, it skips and says why.
 *
 * Backend: nginx itself returning a fixed 200 from one worker. Not Bun.serve: the mesh is a Bun process
 * too, and a C backend that costs little per request keeps the proxies, not the backend, the thing
 * being compared. The mesh runs its relay threads (one per CPU, SHOAL_MESH_THREADS) and nginx's stream
 * proxy as many workers (nginx's own `worker_processes auto`); the bare Bun relay is one JavaScript
 * thread. On loopback ports, each run alone (nginx under -p <temp dir>, in the foreground, as a child;
 * no system config is touched).
 *
 * Throughput: wrk -t1 -c64; latency: wrk -t1 -c1 (one request at a time, so p50 is the cost of a hop,
 * not of a queue); new connections: wrk -t1 -c16 with `Connection: close` (accept, backend connect and
 * close per request: the per-connection path, and tens of thousands of connections through it). Added latency = p50 through the proxy − p50 direct. A bare Bun relay (bare-relay.ts)
 * runs too, as the floor of what Bun can do.
 *
 * The machine's speed drifts by ±20 % over minutes (two shared cores), more than the proxies differ, so
 * the throughput target is judged on pairs of back-to-back c64 runs of nginx and the mesh, in ABBA
 * order, each pair giving one ratio; the median ratio is reported with a distribution-free 95 %
 * interval. The target comparison, the mesh as shipped against nginx with as many workers as the mesh
 * has threads, gets MESH_BENCH_TARGET_PAIRS (default 64: 16 left intervals of about ±0.08 that could not
 * separate the two); each other comparison MESH_BENCH_PAIRS (16): against the same nginx with
 * `reuseport` on its listener, one relay thread against one nginx worker, against nginx with
 * `worker_cpu_affinity auto` (its workers pinned, as the mesh's threads are), and the mesh against
 * itself with SHOAL_MESH_PIN=0 (what pinning gives). Then MESH_BENCH_ROUNDS (5) rounds in rotating order measure
 * every target (direct, nginx, bare, mesh) for throughput, latency and new connections; medians
 * reported. CPU time per request of the proxy process (from /proc) is reported too, split into user
 * space and kernel (the kernel's share is the same socket work for every proxy: a profile of the relay
 * thread puts 77 % of its time in send(), i.e. TCP transmit plus the loopback receive of the peer).
 * MESH_BENCH_SECONDS (default 2) sets each wrk run.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Subprocess } from 'bun';
import { cpuTimesOf, type Figure, report } from './lib.ts';
import { relayThreads } from '../src/mesh/native-relay.ts';
import { run as runBalance } from './mesh-balance.ts';

const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

/**
 * MESH_BENCH_PIN=1 (with two CPUs or more, and taskset): the proxy under test gets CPU 1 to itself,
 * the load generator and the backend share CPU 0, the same for every proxy. Off by default: on two
 * CPUs, wrk and the backend then cap the rate near what one proxy can do (~44k/s here, the "direct"
 * figure), so the proxies come out equal whatever their cost; unpinned, the four processes share both
 * CPUs and a cheaper proxy leaves more to the others (half its saving shows as rate).
 */
const PIN = process.env.MESH_BENCH_PIN === '1' && cpus().length >= 2 && Bun.which('taskset') !== null;
const on = (cpu: number, argv: string[]) => (PIN ? ['taskset', '-c', String(cpu), ...argv] : argv);
const LOAD_CPU = 0;
const PROXY_CPU = 1;

interface WrkResult {
  rps: number;
  p50Us: number;
  p99Us: number;
}

function freePort(): number {
  const l = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
  const p = l.port;
  l.stop(true);
  return p;
}

function toUs(v: string, unit: string): number {
  const x = Number(v);
  return unit === 'us' ? x : unit === 'ms' ? x * 1e3 : unit === 's' ? x * 1e6 : NaN;
}

export function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p50 = /^\s+50%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out);
  if (!rps || !p50 || !p99) throw new Error(`cannot read wrk's output:\n${out}`);
  if (/Non-2xx|Socket errors/.test(out)) throw new Error(`wrk saw errors:\n${out}`);
  return { rps: Number(rps[1]), p50Us: toUs(p50[1]!, p50[2]!), p99Us: toUs(p99[1]!, p99[2]!) };
}

async function wrk(port: number, connections: number, seconds: number, newConnections = false): Promise<WrkResult> {
  const close = newConnections ? ['-H', 'Connection: close'] : [];
  const p = Bun.spawn(on(LOAD_CPU, ['wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...close, `http://127.0.0.1:${port}/`]), { stdout: 'pipe', stderr: 'pipe' });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`wrk exited ${code}: ${err}`);
  return parseWrk(out);
}

async function waitListening(port: number, what: string, child: Subprocess): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode} before listening`);
    const ok = await Bun.connect({ hostname: '127.0.0.1', port, socket: { data() {} } }).then(
      (s) => (s.end(), true),
      () => false,
    );
    if (ok) return;
    await Bun.sleep(10);
  }
  throw new Error(`${what} never listened on ${port}`);
}

function nginxConf(dir: string, name: string, body: string, stream: boolean, workers = 1, main = ''): string {
  const conf = join(dir, `${name}.conf`);
  writeFileSync(
    conf,
    [
      stream ? `load_module ${STREAM_MODULE};` : '',
      `worker_processes ${workers};`,
      main,
      `pid ${join(dir, name)}.pid;`,
      `error_log ${join(dir, name)}.err warn;`,
      'events { worker_connections 4096; }',
      body,
    ].join('\n'),
  );
  return conf;
}

function spawnNginx(dir: string, conf: string, cpu: number): Subprocess {
  return Bun.spawn(on(cpu, ['nginx', '-p', dir, '-c', conf, '-g', 'daemon off;']), { stdout: 'ignore', stderr: 'inherit' });
}

export function skipReason(): string | null {
  if (!Bun.which('nginx')) return 'nginx not found (apt-get install -y nginx libnginx-mod-stream)';
  if (!Bun.which('wrk')) return 'wrk not found (apt-get install -y wrk)';
  if (!existsSync(STREAM_MODULE)) return `nginx stream module missing at ${STREAM_MODULE} (apt-get install -y libnginx-mod-stream)`;
  return null;
}

/** CPU time (user, system) of processes, in µs; Linux only. */
function cpuUs(pids: number[]): { user: number; sys: number } {
  let user = 0;
  let sys = 0;
  for (const pid of pids) {
    try {
      const c = cpuTimesOf(pid);
      user += c.user;
      sys += c.system;
    } catch {}
  }
  return { user: user * 1e6, sys: sys * 1e6 };
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function spawnRelay(script: string, backendPort: number, children: Subprocess[], env: Record<string, string> = {}): Promise<{ port: number; pid: number }> {
  const p = Bun.spawn(on(PROXY_CPU, [process.execPath, join(import.meta.dir, script), String(backendPort)]), { stdout: 'pipe', stderr: 'inherit', env: { ...process.env, ...env } });
  children.push(p);
  const first = new TextDecoder().decode((await p.stdout.getReader().read()).value);
  const port = Number(/ready (\d+)/.exec(first)?.[1]);
  if (!port) throw new Error(`${script} did not start: ${first}`);
  console.log(`  ${script}: ${first.trim()}`);
  await waitListening(port, script, p);
  return { port, pid: p.pid };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/**
 * A distribution-free 95 % interval for the median of `xs` (order statistics: the k-th smallest and
 * largest, k the largest with P(Binomial(n, ½) < k) ≤ 2.5 %). Too few samples: the whole range.
 */
export function medianInterval(xs: number[]): [number, number] {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return [NaN, NaN];
  let cdf = 0;
  let k = 0; // P(B ≤ k - 1) so far
  let term = 0.5 ** n; // P(B = 0)
  while (k < n && cdf + term <= 0.025) {
    cdf += term;
    term = (term * (n - k)) / (k + 1);
    k++;
  }
  return k === 0 ? [s[0]!, s[n - 1]!] : [s[k - 1]!, s[n - k]!];
}

function pairFigures(p: { ratios: number[]; ci: [number, number]; above: number; summed: number }): Figure[] {
  return [
    report({ name: '  95% interval of that median', value: p.ci[0], unit: `– ${p.ci[1].toFixed(3)}`, anchor: `${p.above} of ${p.ratios.length} pairs ≥ 1.0×; requests summed ${p.summed.toFixed(3)}×` }),
  ];
}

type Name = 'direct' | 'nginx' | 'bare' | 'mesh' | 'nginx-reuseport' | 'nginx-affinity' | 'nginx-1' | 'mesh-1' | 'mesh-unpinned';

export async function run(): Promise<{ figures: Figure[]; skipped?: string; raw?: unknown }> {
  console.log('mesh (ingress proxy vs nginx stream proxy, HTTP through wrk)');
  const balance = runBalance();
  const skip = skipReason();
  if (skip) {
    console.log(`  proxy comparison skipped: ${skip}`);
    return { figures: balance, skipped: skip };
  }
  const seconds = Number(process.env.MESH_BENCH_SECONDS ?? 2);
  const pairCount = Number(process.env.MESH_BENCH_PAIRS ?? 16);
  const targetPairs = Number(process.env.MESH_BENCH_TARGET_PAIRS ?? 64);
  const rounds = Number(process.env.MESH_BENCH_ROUNDS ?? 5);
  const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-mesh-'));
  const children: Subprocess[] = [];
  try {
    const backendPort = freePort();
    const backend = spawnNginx(
      dir,
      nginxConf(
        dir,
        'backend',
        `http { access_log off; client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:${backendPort}; location / { return 200 "ok\\n"; } } }`,
        false,
      ),
      LOAD_CPU,
    );
    children.push(backend);
    await waitListening(backendPort, 'backend nginx', backend);

    // As many nginx workers as the mesh has relay threads: one per CPU for both, nginx's own `auto`.
    // Also nginx with `reuseport` (the kernel spreads connections over its workers' own sockets; by
    // default one worker tends to take most of a burst), nginx with its workers pinned to CPUs as the
    // mesh's threads are, one worker against one relay thread, and the mesh with its threads unpinned.
    const threads = relayThreads();
    const nginx = async (name: string, workers: number, listen = '', main = '') => {
      const port = freePort();
      const p = spawnNginx(dir, nginxConf(dir, name, `stream { server { listen 127.0.0.1:${port}${listen}; proxy_pass 127.0.0.1:${backendPort}; } }`, true, workers, main), PROXY_CPU);
      children.push(p);
      await waitListening(port, `nginx stream proxy (${name})`, p);
      return { port, pids: () => childrenOf(p.pid) };
    };
    const bare = await spawnRelay('bare-relay.ts', backendPort, children);
    const mesh = await spawnRelay('mesh-proxy.ts', backendPort, children);
    const mesh1 = await spawnRelay('mesh-proxy.ts', backendPort, children, { SHOAL_MESH_THREADS: '1' });
    const meshUnpinned = await spawnRelay('mesh-proxy.ts', backendPort, children, { SHOAL_MESH_PIN: '0' });

    const targets: Record<Name, { port: number; pids: () => number[] }> = {
      direct: { port: backendPort, pids: () => [] },
      nginx: await nginx('proxy', threads),
      bare: { port: bare.port, pids: () => [bare.pid] },
      mesh: { port: mesh.port, pids: () => [mesh.pid] },
      'nginx-reuseport': await nginx('proxy-reuseport', threads, ' reuseport'),
      'nginx-affinity': await nginx('proxy-affinity', threads, '', 'worker_cpu_affinity auto;'),
      'nginx-1': await nginx('proxy-1', 1),
      'mesh-1': { port: mesh1.port, pids: () => [mesh1.pid] },
      'mesh-unpinned': { port: meshUnpinned.port, pids: () => [meshUnpinned.pid] },
    };
    const names: Name[] = ['direct', 'nginx', 'bare', 'mesh'];
    const measure = async (name: Name, connections: number, fresh = false) => {
      const t = targets[name];
      const cpu0 = cpuUs(t.pids());
      const r = await wrk(t.port, connections, seconds, fresh);
      const cpu1 = cpuUs(t.pids());
      const reqs = r.rps * seconds;
      return { ...r, user: (cpu1.user - cpu0.user) / reqs, sys: (cpu1.sys - cpu0.sys) / reqs };
    };

    // Throughput, mesh against nginx: pairs of back-to-back runs, in ABBA order (nginx first in even
    // pairs, the mesh first in odd ones), each pair giving one ratio. The machine's speed drifts by
    // ±20 % over minutes; within a pair it does not, so the pairs' ratios are what is compared.
    type Pair = { a: number; b: number; aCpu: [number, number]; bCpu: [number, number] };
    const paired = async (a: Name, b: Name, count: number) => {
      const pairs: Pair[] = [];
      for (let i = 0; i < count; i++) {
        const ra = i % 2 === 0 ? await measure(a, 64) : undefined;
        const rb = await measure(b, 64);
        const ra2 = ra ?? (await measure(a, 64));
        pairs.push({ a: ra2.rps, b: rb.rps, aCpu: [ra2.user, ra2.sys], bCpu: [rb.user, rb.sys] });
        if (i % 4 === 3 || i === count - 1) {
          const last = pairs.slice(i - (i % 4));
          console.log(`  ${b} ÷ ${a}, pairs ${i - (i % 4) + 1}-${i + 1}: ${last.map((p) => `${(p.b / 1000).toFixed(1)}k/${(p.a / 1000).toFixed(1)}k = ${(p.b / p.a).toFixed(3)}`).join('  ')}`);
        }
      }
      const ratios = pairs.map((p) => p.b / p.a);
      return { pairs, ratios, ratio: median(ratios), ci: medianInterval(ratios), above: ratios.filter((r) => r >= 1).length, summed: sum(pairs.map((p) => p.b)) / sum(pairs.map((p) => p.a)) };
    };
    const main = await paired('nginx', 'mesh', targetPairs);
    const tuned = await paired('nginx-reuseport', 'mesh', pairCount);
    const single = await paired('nginx-1', 'mesh-1', pairCount);
    const affinity = await paired('nginx-affinity', 'mesh', pairCount);
    const pinning = await paired('mesh-unpinned', 'mesh', pairCount);
    const pairs = main.pairs;

    // The rest in rotating rounds: each target's throughput (also direct and the bare relay), one
    // request at a time (p50 of a hop) and a new connection per request.
    const runs: Record<Name, { rps: number[]; user: number[]; sys: number[]; p50Us: number[]; p99Us: number[]; connRps: number[] }> = Object.fromEntries(
      names.map((n) => [n, { rps: [], user: [], sys: [], p50Us: [], p99Us: [], connRps: [] }]),
    ) as never;
    for (let round = 0; round < rounds; round++) {
      const order = names.map((_, i) => names[(i + round) % names.length]!);
      const line: string[] = [];
      for (const name of order) {
        const load = await measure(name, 64);
        const latency = await measure(name, 1);
        const fresh = await measure(name, 16, true);
        const r = runs[name];
        r.rps.push(load.rps);
        r.user.push(load.user);
        r.sys.push(load.sys);
        r.p50Us.push(latency.p50Us);
        r.p99Us.push(latency.p99Us);
        r.connRps.push(fresh.rps);
        line.push(`${name} ${(load.rps / 1000).toFixed(1)}k/${latency.p50Us}µs/${(fresh.rps / 1000).toFixed(1)}k new`);
      }
      console.log(`  round ${round + 1}: ${line.join('  ')}`);
    }
    // Throughput and CPU of nginx and the mesh from the pairs and the rounds together; direct and bare
    // from the rounds.
    const all = (n: Name, k: 'rps' | 'user' | 'sys') =>
      n === 'nginx' || n === 'mesh'
        ? [...runs[n][k], ...pairs.map((p) => (k === 'rps' ? (n === 'nginx' ? p.a : p.b) : (n === 'nginx' ? p.aCpu : p.bCpu)[k === 'user' ? 0 : 1]))]
        : runs[n][k];
    const m = Object.fromEntries(
      names.map((n) => {
        const user = median(all(n, 'user'));
        const sys = median(all(n, 'sys'));
        return [n, { rps: median(all(n, 'rps')), cpuUsPerReq: user + sys, userUsPerReq: user, sysUsPerReq: sys, p50Us: median(runs[n].p50Us), connRps: median(runs[n].connRps) }];
      }),
    ) as Record<Name, { rps: number; cpuUsPerReq: number; userUsPerReq: number; sysUsPerReq: number; p50Us: number; connRps: number }>;
    const added = (n: Name) => m[n].p50Us - m.direct.p50Us;
    console.log(`  ${targetPairs} ABBA pairs of ${seconds} s c64 runs for the target, ${pairCount} for each other comparison, then ${rounds} rotating rounds; ${threads} mesh thread(s) and nginx worker(s) unless said; ${PIN ? `proxies on CPU ${PROXY_CPU}, wrk and the backend on CPU ${LOAD_CPU}` : 'unpinned'}:`);
    const figures: Figure[] = [
      ...balance,
      report({ name: 'HTTP rps direct to the backend (c64)', value: Math.round(m.direct.rps), unit: 'req/s', anchor: 'ceiling' }),
      report({ name: 'HTTP rps via nginx stream proxy (c64)', value: Math.round(m.nginx.rps), unit: 'req/s', anchor: 'nginx' }),
      report({ name: 'HTTP rps via a bare Bun relay (c64)', value: Math.round(m.bare.rps), unit: 'req/s', anchor: `${(m.bare.rps / m.nginx.rps).toFixed(2)}× nginx` }),
      report({ name: 'HTTP rps via the mesh (c64)', value: Math.round(m.mesh.rps), unit: 'req/s', anchor: `${(m.mesh.rps / m.nginx.rps).toFixed(2)}× nginx` }),
      report({ name: `mesh ÷ nginx throughput, ${threads} thread(s) each`, value: main.ratio, unit: '×', target: '≥ 1.0×', met: main.ratio >= 1.0 }),
      ...pairFigures(main),
      report({ name: 'mesh ÷ nginx with reuseport', value: tuned.ratio, unit: '×', anchor: 'nginx tuned' }),
      ...pairFigures(tuned),
      report({ name: 'mesh ÷ nginx, one thread / one worker', value: single.ratio, unit: '×', anchor: 'per core' }),
      ...pairFigures(single),
      report({ name: 'mesh ÷ nginx with worker_cpu_affinity auto', value: affinity.ratio, unit: '×', anchor: 'nginx pinned too' }),
      ...pairFigures(affinity),
      report({ name: 'mesh ÷ the mesh with SHOAL_MESH_PIN=0', value: pinning.ratio, unit: '×', anchor: 'what pinning gives' }),
      ...pairFigures(pinning),
      report({ name: 'proxy CPU per request: nginx workers', value: m.nginx.cpuUsPerReq, unit: 'µs/req', anchor: 'nginx' }),
      report({ name: 'proxy CPU per request: bare Bun relay', value: m.bare.cpuUsPerReq, unit: 'µs/req' }),
      report({ name: 'proxy CPU per request: mesh', value: m.mesh.cpuUsPerReq, unit: 'µs/req' }),
      report({ name: '  of it in user space: nginx workers', value: m.nginx.userUsPerReq, unit: 'µs/req', anchor: `kernel ${m.nginx.sysUsPerReq.toFixed(1)}` }),
      report({ name: '  of it in user space: bare Bun relay', value: m.bare.userUsPerReq, unit: 'µs/req', anchor: `kernel ${m.bare.sysUsPerReq.toFixed(1)}` }),
      report({ name: '  of it in user space: mesh', value: m.mesh.userUsPerReq, unit: 'µs/req', anchor: `kernel ${m.mesh.sysUsPerReq.toFixed(1)}` }),
      report({ name: 'new connections: rps with Connection: close, direct (c16)', value: Math.round(m.direct.connRps), unit: 'req/s', anchor: 'ceiling' }),
      report({ name: 'new connections: rps via nginx (c16)', value: Math.round(m.nginx.connRps), unit: 'req/s', anchor: 'nginx' }),
      report({ name: 'new connections: rps via a bare Bun relay (c16)', value: Math.round(m.bare.connRps), unit: 'req/s' }),
      report({ name: 'new connections: rps via the mesh (c16)', value: Math.round(m.mesh.connRps), unit: 'req/s', anchor: `${(m.mesh.connRps / m.nginx.connRps).toFixed(2)}× nginx` }),
      report({ name: 'p50 latency direct (c1)', value: m.direct.p50Us, unit: 'µs' }),
      report({ name: 'p50 added by nginx (c1)', value: added('nginx'), unit: 'µs', anchor: 'nginx' }),
      report({ name: 'p50 added by a bare Bun relay (c1)', value: added('bare'), unit: 'µs' }),
      report({ name: 'p50 added by the mesh (c1)', value: added('mesh'), unit: 'µs', target: `≤ nginx's ${added('nginx').toFixed(1)} µs`, met: added('mesh') <= added('nginx') }),
    ];
    return { figures, raw: { seconds, pairs: { main, tuned, single, affinity, pinning }, rounds, threads, pinned: PIN, medians: m, runs } };
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => c.exited));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await run();
