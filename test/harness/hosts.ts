/**
 * Hosts made of Linux network namespaces, for tests that need real partitions between real processes.
 *
 *   await using net = await NetnsHosts.create({ hosts: 3 });
 *   const p = net.spawn(net.hosts[0], [SHOAL, 'daemon', …]);   // runs inside host 0
 *   net.isolate(net.hosts[2]);  …  net.heal();
 *
 * Each host is a namespace with one interface, eth0, the far end of a veth pair whose near end is a
 * port of a bridge in the root namespace; hosts get PREFIX.2, PREFIX.3, … (default 10.77.0.0/24). The
 * bridge has no address, so the hosts reach each other and nothing else, and two runs using the same
 * range on two bridges do not see each other.
 *
 * Faults:
 * - isolate(h) / reconnect(h): the host's veth port goes down / up: symmetric, from everyone.
 * - partition(a, b): hosts in a and hosts in b drop each other's packets (iptables in each namespace).
 * - dropOneWay(from, to): packets from `from` are dropped on arrival at `to`; the other way still flows.
 * - heal(): every port up, every drop rule gone.
 *
 * netns(name) makes one more namespace of the run, off the bridge with only lo (down): a task's, or a
 * VM's stand-in, for tests that wire it up themselves (the overlay's own tests).
 *
 * Names carry the creating pid and a random id, so parallel runs never collide and sweepStale() can
 * remove what a killed run left behind. dispose kills every process in the namespaces, then removes the
 * namespaces (which removes the veths) and the bridge, even after a failed test.
 *
 * When br_netfilter is loaded (Docker loads it, and sets FORWARD's policy to DROP), bridged packets
 * pass the root namespace's FORWARD chain: one ACCEPT rule for this bridge only is inserted, and
 * removed at dispose.
 *
 * Needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN), iproute2 and iptables; netnsUnavailable() says what is missing,
 * requireNetns() also fails instead when SHOAL_REQUIRE_NETNS=1. Daemons in these hosts: daemon.ts, cluster.ts.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface NetHost {
  /** 0-based index in NetnsHosts.hosts. */
  readonly index: number;
  /** Network namespace name (for `ip netns exec`). */
  readonly netns: string;
  /** Address on the shared segment. */
  readonly ip: string;
  /** The bridge-side veth (in the root namespace). */
  readonly port: string;
}

export interface NetnsOptions {
  hosts: number;
  /** First three octets of the /24 the hosts live in. */
  prefix?: string;
}

const NAME_PREFIX = 'shoal-';
const BRIDGE_ALIAS = 'shoal-netns-test';

/** Run a command; throw with its stderr when it fails. */
function sh(cmd: string[], okCodes: number[] = [0]): string {
  const r = Bun.spawnSync(cmd, { stdout: 'pipe', stderr: 'pipe' });
  if (!okCodes.includes(r.exitCode ?? -1)) throw new Error(`${cmd.join(' ')} exited ${r.exitCode}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
}

function tryRun(cmd: string[]): boolean {
  return Bun.spawnSync(cmd, { stdout: 'ignore', stderr: 'ignore' }).exitCode === 0;
}

/** Why namespace hosts cannot be made here, or null when they can (tries making one). */
export function netnsUnavailable(): string | null {
  if (process.platform !== 'linux') return 'network namespaces are Linux only';
  if (process.getuid?.() !== 0) return 'needs root to make network namespaces (CI runs as root)';
  for (const tool of ['ip', 'iptables']) if (!Bun.which(tool)) return `needs ${tool} (Debian package ${tool === 'ip' ? 'iproute2' : 'iptables'})`;
  const probe = `${NAME_PREFIX}probe-${randomBytes(3).toString('hex')}`;
  const r = Bun.spawnSync(['ip', 'netns', 'add', probe], { stderr: 'pipe' });
  if (r.exitCode !== 0) return `cannot make a network namespace: ${r.stderr.toString().trim()}`;
  try {
    const ipt = Bun.spawnSync(['ip', 'netns', 'exec', probe, 'iptables', '-S', 'INPUT'], { stderr: 'pipe' });
    if (ipt.exitCode !== 0) return `iptables does not work inside a namespace: ${ipt.stderr.toString().trim()}`;
  } finally {
    tryRun(['ip', 'netns', 'del', probe]);
  }
  return null;
}

/**
 * Why a namespace-host test cannot run here (null: it can): namespaces first, then the test's own
 * `needs` (each a reason, or null when met). With SHOAL_REQUIRE_NETNS=1 (CI) any of those is a
 * failure, thrown at once, not a skip; a test that can do without something checks it after this.
 */
export function requireNetns(...needs: (string | null)[]): string | null {
  const why = netnsUnavailable() ?? needs.find((n) => n !== null) ?? null;
  if (why && process.env.SHOAL_REQUIRE_NETNS === '1') throw new Error(`SHOAL_REQUIRE_NETNS=1 but: ${why}`);
  return why;
}

/** Why VXLAN devices cannot be made here (overlay tests), or null; probes it in a scratch namespace. */
export function vxlanUnavailable(): string | null {
  if (!Bun.which('bridge')) return 'needs bridge (Debian package iproute2)';
  const probe = `${NAME_PREFIX}probe-${randomBytes(3).toString('hex')}`;
  if (!tryRun(['ip', 'netns', 'add', probe])) return 'cannot make a network namespace';
  try {
    const vx = Bun.spawnSync(['ip', '-n', probe, 'link', 'add', 'vx', 'type', 'vxlan', 'id', '1', 'dstport', '4789', 'local', '127.0.0.1', 'nolearning'], { stderr: 'pipe' });
    return vx.exitCode === 0 ? null : `this kernel has no VXLAN: ${vx.stderr.toString().trim()}`;
  } finally {
    tryRun(['ip', 'netns', 'del', probe]);
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kill every process inside a namespace and wait (bounded) until none is left. */
function killNetnsProcesses(netns: string): void {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const pids = sh(['ip', 'netns', 'pids', netns], [0, 1]).split('\n').filter(Boolean).map(Number);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    if (Date.now() > deadline) throw new Error(`processes ${pids.join(', ')} in ${netns} survive SIGKILL`);
    Bun.sleepSync(10);
  }
}

function bridgedTrafficFiltered(): boolean {
  try {
    return readFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8').trim() === '1';
  } catch {
    return false; // br_netfilter not loaded: bridged frames never meet iptables
  }
}

function listNetns(): string[] {
  return sh(['ip', 'netns', 'list']).split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
}

/** Remove namespaces and bridges left by runs whose process is gone (a test runner killed mid-test). */
export function sweepStale(): string[] {
  const removed: string[] = [];
  for (const ns of listNetns()) {
    const m = /^shoal-(\d+)-[0-9a-f]+-(h\d+|x-[a-z0-9]+)$/.exec(ns);
    if (!m || pidAlive(Number(m[1]))) continue;
    killNetnsProcesses(ns);
    if (tryRun(['ip', 'netns', 'del', ns])) removed.push(ns);
  }
  const links = JSON.parse(sh(['ip', '-j', '-d', 'link', 'show', 'type', 'bridge']) || '[]') as { ifname: string; ifalias?: string }[];
  for (const l of links) {
    const m = new RegExp(`^${BRIDGE_ALIAS} pid=(\\d+)`).exec(l.ifalias ?? '');
    if (!m || pidAlive(Number(m[1]))) continue;
    if (tryRun(['ip', 'link', 'del', l.ifname])) removed.push(l.ifname);
  }
  // FORWARD rules for bridges of ours that no longer exist.
  const bridges = new Set(links.map((l) => l.ifname));
  for (const line of sh(['iptables', '-w', '-S', 'FORWARD']).split('\n')) {
    const m = /^-A FORWARD -i (sbr[0-9a-f]{6}) -o \1 -j ACCEPT$/.exec(line.trim());
    if (!m || (bridges.has(m[1]!) && !removed.includes(m[1]!))) continue;
    if (tryRun(['iptables', '-w', '-D', 'FORWARD', '-i', m[1]!, '-o', m[1]!, '-j', 'ACCEPT'])) removed.push(`FORWARD rule for ${m[1]}`);
  }
  return removed;
}

/** Harnesses not disposed yet: disposeAll() (an afterEach) and process exit remove them. */
const live = new Set<NetnsHosts>();
let exitHook = false;

/** Dispose every harness still alive (for an afterEach: a timed-out test skips its own cleanup). */
export function disposeAllHosts(): void {
  const errors: string[] = [];
  for (const net of [...live]) {
    try {
      net.dispose();
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  if (errors.length) throw new Error(errors.join('; '));
}

function hookExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    try {
      disposeAllHosts();
    } catch (e) {
      console.error(`netns hosts: ${(e as Error).message}`);
    }
  });
}

export class NetnsHosts implements AsyncDisposable, Disposable {
  readonly hosts: NetHost[] = [];
  readonly bridge: string;
  /** The namespaces netns() made, by name. */
  readonly extra: string[] = [];
  private readonly procs = new Set<Bun.Subprocess>();
  private disposed = false;

  private constructor(readonly id: string, readonly prefix: string) {
    this.bridge = `sbr${id}`;
  }

  /** Make the bridge and `hosts` namespaces; on any failure, removes what it made and throws. */
  static async create(opts: NetnsOptions): Promise<NetnsHosts> {
    const prefix = opts.prefix ?? '10.77.0';
    if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(prefix)) throw new Error(`prefix "${prefix}": expected three octets, e.g. 10.77.0`);
    if (!(opts.hosts >= 1 && opts.hosts <= 200)) throw new Error(`hosts: ${opts.hosts}: expected 1..200`);
    const net = new NetnsHosts(randomBytes(3).toString('hex'), prefix);
    live.add(net);
    hookExit();
    try {
      sh(['ip', 'link', 'add', net.bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
      sh(['ip', 'link', 'set', net.bridge, 'alias', `${BRIDGE_ALIAS} pid=${process.pid} id=${net.id}`]);
      sh(['ip', 'link', 'set', net.bridge, 'up']);
      if (bridgedTrafficFiltered()) sh(['iptables', '-w', '-I', 'FORWARD', '1', ...net.forwardRule()]);
      for (let i = 0; i < opts.hosts; i++) net.addHost(i);
    } catch (e) {
      net.dispose();
      throw e;
    }
    return net;
  }

  private addHost(index: number): void {
    const host: NetHost = { index, netns: `${NAME_PREFIX}${process.pid}-${this.id}-h${index}`, ip: `${this.prefix}.${index + 2}`, port: `sv${this.id}-${index}` };
    sh(['ip', 'netns', 'add', host.netns]);
    this.hosts.push(host); // from here on dispose removes it
    sh(['ip', '-n', host.netns, 'link', 'set', 'lo', 'up']);
    sh(['ip', 'link', 'add', host.port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.netns]);
    sh(['ip', 'link', 'set', host.port, 'master', this.bridge, 'up']);
    sh(['ip', '-n', host.netns, 'addr', 'add', `${host.ip}/24`, 'dev', 'eth0']);
    sh(['ip', '-n', host.netns, 'link', 'set', 'eth0', 'up']);
  }

  /**
   * One more namespace of this run, named `shoal-<pid>-<id>-x-<name>`: not on the bridge, no interface
   * but lo (down), as `ip netns add` leaves it. For a task's namespace or a VM's stand-in that the test
   * wires up itself. Its processes are killed and it is removed at dispose, as the hosts are.
   */
  netns(name: string): string {
    if (this.disposed) throw new Error('netns: this harness is disposed');
    if (!/^[a-z0-9]{1,12}$/.test(name)) throw new Error(`netns name "${name}": expected 1-12 of a-z, 0-9`);
    const netns = `${NAME_PREFIX}${process.pid}-${this.id}-x-${name}`;
    if (this.extra.includes(netns)) throw new Error(`netns "${name}" exists already in this harness`);
    sh(['ip', 'netns', 'add', netns]);
    this.extra.push(netns);
    return netns;
  }

  /**
   * With br_netfilter loaded (Docker loads it), bridged IPv4 goes through the root namespace's FORWARD
   * chain, whose policy Docker sets to DROP: let this bridge's own traffic through, and only that.
   */
  private forwardRule(): string[] {
    return ['-i', this.bridge, '-o', this.bridge, '-j', 'ACCEPT'];
  }

  /** The argv that runs `cmd` inside `host` (or a namespace named so: a task's, say). */
  argv(host: NetHost | string, cmd: string[]): string[] {
    return ['ip', 'netns', 'exec', typeof host === 'string' ? host : host.netns, ...cmd];
  }

  /** Start `cmd` inside `host` (or a namespace named so); it is killed at dispose if still running. */
  spawn(host: NetHost | string, cmd: string[], opts: { env?: Record<string, string>; stdout?: 'pipe' | 'inherit' | 'ignore'; stderr?: 'pipe' | 'inherit' | 'ignore' } = {}): Bun.Subprocess<'ignore', 'pipe' | 'inherit' | 'ignore', 'pipe' | 'inherit' | 'ignore'> {
    const p = Bun.spawn(this.argv(host, cmd), { stdin: 'ignore', stdout: opts.stdout ?? 'pipe', stderr: opts.stderr ?? 'pipe', env: opts.env ?? (process.env as Record<string, string>) });
    this.procs.add(p);
    void p.exited.then(() => this.procs.delete(p));
    return p;
  }

  /** Run `cmd` inside `host` (or a namespace named so) to completion. */
  async run(host: NetHost | string, cmd: string[], env?: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
    const p = this.spawn(host, cmd, { env });
    const [stdout, stderr, code] = await Promise.all([new Response(p.stdout as ReadableStream).text(), new Response(p.stderr as ReadableStream).text(), p.exited]);
    return { code, stdout, stderr };
  }

  /** Cut every link of `host` (its bridge port goes down): symmetric. */
  isolate(host: NetHost): void {
    sh(['ip', 'link', 'set', host.port, 'down']);
  }

  reconnect(host: NetHost): void {
    sh(['ip', 'link', 'set', host.port, 'up']);
  }

  /** Packets from `from` are dropped when they reach `to`; `to` → `from` still flows. */
  dropOneWay(from: NetHost, to: NetHost): void {
    sh(['ip', 'netns', 'exec', to.netns, 'iptables', '-w', '-A', 'INPUT', '-s', `${from.ip}/32`, '-j', 'DROP']);
  }

  /** Every host in `a` and every host in `b` stop hearing each other. Hosts within a side still do. */
  partition(a: NetHost[], b: NetHost[]): void {
    for (const x of a) {
      for (const y of b) {
        if (x === y) throw new Error(`host ${x.index} is on both sides of the partition`);
        this.dropOneWay(x, y);
        this.dropOneWay(y, x);
      }
    }
  }

  /** All ports up, all drop rules removed. */
  heal(): void {
    for (const h of this.hosts) {
      this.reconnect(h);
      sh(['ip', 'netns', 'exec', h.netns, 'iptables', '-w', '-F', 'INPUT']);
    }
  }

  /** What of this run still exists in the kernel (empty after dispose). */
  leftovers(): string[] {
    const names = new Set([...this.hosts.map((h) => h.netns), ...this.extra]);
    const left = listNetns().filter((n) => names.has(n) || n.includes(`-${this.id}-`));
    const links = sh(['ip', '-o', 'link', 'show']).split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '');
    for (const l of links) if (l === this.bridge || l.startsWith(`sv${this.id}-`)) left.push(l);
    if (tryRun(['iptables', '-w', '-C', 'FORWARD', ...this.forwardRule()])) left.push(`iptables FORWARD rule for ${this.bridge}`);
    return left;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * Synchronous, so it can also run from a process 'exit' handler: a test that timed out never reaches
   * its `await using` cleanup, and the runner exits with the harness still in place.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    live.delete(this);
    const errors: string[] = [];
    for (const p of this.procs) p.kill('SIGKILL');
    for (const h of this.hosts) {
      try {
        killNetnsProcesses(h.netns);
        // Deleting the near end takes the far end with it now; a namespace's own teardown is deferred.
        tryRun(['ip', 'link', 'del', h.port]);
        sh(['ip', 'netns', 'del', h.netns]);
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    for (const ns of this.extra) {
      try {
        killNetnsProcesses(ns);
        sh(['ip', 'netns', 'del', ns]);
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    while (tryRun(['iptables', '-w', '-D', 'FORWARD', ...this.forwardRule()]));
    if (!tryRun(['ip', 'link', 'del', this.bridge]) && sh(['ip', 'link', 'show']).includes(`${this.bridge}:`)) errors.push(`could not delete bridge ${this.bridge}`);
    if (errors.length) throw new Error(`netns cleanup: ${errors.join('; ')}`);
  }
}
