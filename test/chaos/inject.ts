/**
 * Puts the schedule's faults (schedule.ts) on a namespace-host cluster and takes them off again:
 * kill -9 and restart, partitions (iptables drops in the namespaces, hosts.ts), netem loss and
 * delay (tc on the namespace's eth0), SIGSTOP/SIGCONT, and a full file system under one manager's
 * data dir (a tmpfs mounted there before boot; DiskFull below). Every fault is undone by its own
 * heal, and healAll() undoes whatever is left, also after a failure.
 */
import { mkdirSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import type { Daemon, NetHost, NetnsHosts } from '../harness/index.ts';
import { arrange, type Fault, pick } from './schedule.ts';

export interface FaultRecord {
  kind: string;
  /** ms since the workload's start. */
  at: number;
  healedAt?: number;
  targets: string[];
  /** What happened that the report should say (a daemon that died of a full disk, a restart that failed). */
  note?: string;
}

/** Mounted and not yet unmounted: unmountAll() (an afterEach, the process's exit) takes them away. */
const mounted = new Set<DiskFull>();

/** Unmount every DiskFull still mounted: before the cluster's dir is removed (disposeAll), or it is busy. */
export function unmountAll(): void {
  for (const d of [...mounted]) d.unmount();
}

/** One host's data dir on its own small tmpfs, so that it can be filled. Root only. */
export class DiskFull {
  mounted = false;
  readonly filler: string;

  constructor(readonly dir: string, readonly sizeMiB = 96) {
    this.filler = join(dir, 'chaos-filler');
  }

  mount(): void {
    mkdirSync(this.dir, { recursive: true });
    run(['mount', '-t', 'tmpfs', '-o', `size=${this.sizeMiB}m,mode=0700`, 'tmpfs', this.dir]);
    this.mounted = true;
    if (mounted.size === 0) process.on('exit', unmountAll);
    mounted.add(this);
  }

  /** Take every free byte (fallocate, then appends until ENOSPC for what fallocate leaves). */
  fill(): void {
    const s = statfsSync(this.dir);
    const free = Number(s.bavail) * Number(s.bsize);
    Bun.spawnSync(['fallocate', '-l', String(Math.max(free - 4096, 4096)), this.filler]);
    Bun.spawnSync(['sh', '-c', `dd if=/dev/zero bs=4096 >> '${this.filler}.2' 2>/dev/null`]);
  }

  free(): void {
    Bun.spawnSync(['rm', '-f', this.filler, `${this.filler}.2`]);
  }

  freeBytes(): number {
    const s = statfsSync(this.dir);
    return Number(s.bavail) * Number(s.bsize);
  }

  /** Lazy: the daemon in it may not have gone yet. Idempotent. */
  unmount(): void {
    if (!this.mounted) return;
    this.mounted = false;
    mounted.delete(this);
    Bun.spawnSync(['umount', '-l', this.dir]);
  }
}

function run(cmd: string[]): void {
  const r = Bun.spawnSync(cmd, { stdout: 'pipe', stderr: 'pipe' });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(' ')} exited ${r.exitCode}: ${r.stderr.toString().trim()}`);
}

export interface ChaosHosts {
  net: NetnsHosts;
  managers: Daemon[];
  workers: Daemon[];
  ids: Map<Daemon, string>;
  disk?: { daemon: Daemon; fs: DiskFull };
}

export class Injector {
  readonly records: FaultRecord[] = [];
  private paused = new Set<Daemon>();
  private shaped = new Set<NetHost>();
  /** Whether tc's netem works here (unknown until the first netem fault), and tc's answer when not. */
  private netem: boolean | undefined;
  private noNetem = '';

  constructor(private readonly c: ChaosHosts, private readonly now: () => number) {}

  private get all(): Daemon[] {
    return [...this.c.managers, ...this.c.workers];
  }

  /** The manager most running managers name as leader (their local raft view), or null. */
  async leader(): Promise<Daemon | null> {
    const votes = new Map<string, number>();
    await Promise.all(this.c.managers.filter((m) => m.isRunning && !this.paused.has(m)).map(async (m) => {
      try {
        const r = await m.api('/raft', { signal: AbortSignal.timeout(1_500) });
        const leader = ((await r.json()) as { Leader?: string }).Leader;
        if (leader) votes.set(leader, (votes.get(leader) ?? 0) + 1);
      } catch {}
    }));
    const best = [...votes].sort((a, b) => b[1] - a[1])[0]?.[0];
    return this.c.managers.find((m) => this.c.ids.get(m) === best) ?? null;
  }

  /** Start `f`; resolves with the function that heals it. */
  async inject(f: Fault): Promise<() => Promise<void>> {
    const rec: FaultRecord = { kind: f.kind, at: Math.round(this.now()), targets: [] };
    this.records.push(rec);
    const done = (heal: () => Promise<void>) => async () => {
      try {
        await heal();
      } finally {
        rec.healedAt = Math.round(this.now());
      }
    };
    const { net, managers } = this.c;
    const leader = f.kind === 'kill-leader' || f.kind === 'partition-leader' || f.kind === 'one-way' ? await this.leader() : null;
    const p = f.picks;
    switch (f.kind) {
      case 'kill-leader':
      case 'kill-node': {
        const d = f.kind === 'kill-leader' ? (leader ?? pick(managers, p[0]!)) : pick(this.all.filter((x) => x.isRunning), p[0]!);
        rec.targets = [d.name + (f.kind === 'kill-leader' && !leader ? ' (no leader known: a random manager)' : '')];
        await d.kill9();
        return done(() => this.restart(d, rec));
      }
      case 'partition-halves': {
        const order = arrange(managers, p);
        const minority = order.slice(0, 2);
        const majority = order.slice(2);
        const sides: [Daemon[], Daemon[]] = [[...minority], [...majority]];
        this.c.workers.forEach((w, i) => sides[p[(i + 3) % p.length]! < 0.5 ? 0 : 1].push(w));
        rec.targets = [sides[0].map((d) => d.name).join(','), sides[1].map((d) => d.name).join(',')];
        net.partition(sides[0].map((d) => d.host!), sides[1].map((d) => d.host!));
        return done(async () => net.heal());
      }
      case 'partition-leader': {
        const l = leader ?? pick(managers, p[0]!);
        const alone = [l];
        if (p[1]! < 0.5) alone.push(pick(managers.filter((m) => m !== l), p[2]!));
        const rest = this.all.filter((d) => !alone.includes(d));
        rec.targets = [alone.map((d) => d.name).join(','), rest.map((d) => d.name).join(',')];
        net.partition(alone.map((d) => d.host!), rest.map((d) => d.host!));
        return done(async () => net.heal());
      }
      case 'one-way': {
        const from = leader && p[0]! < 0.5 ? leader : pick(managers, p[1]!);
        const to = pick(managers.filter((m) => m !== from), p[2]!);
        rec.targets = [`${from.name} → ${to.name} dropped`];
        net.dropOneWay(from.host!, to.host!);
        return done(async () => net.heal());
      }
      case 'bridge': {
        const [a, b, mid, d, e] = arrange(managers, p) as [Daemon, Daemon, Daemon, Daemon, Daemon];
        rec.targets = [`${a.name},${b.name} | ${mid.name} (bridge) | ${d.name},${e.name}`];
        net.partition([a.host!, b.host!], [d.host!, e.host!]);
        return done(async () => net.heal());
      }
      case 'netem': {
        const n = f.netem!;
        const hosts = arrange(this.all, p).slice(0, p[7]! < 0.5 ? 1 : 2);
        rec.targets = [`${hosts.map((d) => d.name).join(',')}: loss ${n.lossPct}%, delay ${n.delayMs}±${n.jitterMs} ms`];
        for (const d of hosts) {
          this.shaped.add(d.host!);
          if (this.netem !== false) {
            const r = Bun.spawnSync(net.argv(d.host!, ['tc', 'qdisc', 'replace', 'dev', 'eth0', 'root', 'netem', 'delay', `${n.delayMs}ms`, `${n.jitterMs}ms`, 'loss', `${n.lossPct}%`]), { stderr: 'pipe' });
            this.netem = r.exitCode === 0;
            if (!this.netem) this.noNetem = r.stderr.toString().trim();
          }
          if (this.netem) continue;
          // No netem in this kernel (sch_netem is a module some kernels lack): loss only, by iptables.
          for (const chain of ['INPUT', 'OUTPUT']) run(net.argv(d.host!, ['iptables', '-w', '-A', chain, '-m', 'statistic', '--mode', 'random', '--probability', String(n.lossPct / 100), '-j', 'DROP']));
          rec.note = `no netem here (tc: ${this.noNetem}): ${n.lossPct}% loss each way by iptables' statistic match, no delay`;
        }
        return done(async () => this.unshape());
      }
      case 'pause': {
        const d = pick(this.all.filter((x) => x.isRunning), p[0]!);
        rec.targets = [d.name];
        d.signal('SIGSTOP');
        this.paused.add(d);
        return done(async () => this.resume());
      }
      case 'disk-full': {
        const disk = this.c.disk;
        if (!disk) {
          rec.note = 'skipped: no manager has its data dir on a tmpfs here';
          return done(async () => {});
        }
        const logFrom = disk.daemon.output.length;
        disk.fs.fill();
        rec.targets = [`${disk.daemon.name} (${disk.fs.freeBytes()} bytes left)`];
        return done(async () => {
          // A daemon that met ENOSPC stops on its own (a clean shutdown, which takes a moment).
          if (/ENOSPC/.test(disk.daemon.output.slice(logFrom)) && disk.daemon.isRunning) await Promise.race([disk.daemon.proc!.exited, Bun.sleep(30_000)]);
          const died = !disk.daemon.isRunning;
          disk.fs.free();
          if (died) {
            rec.note = `${disk.daemon.name} exited on the full disk (code ${disk.daemon.proc?.exitCode}); restarted: ${lastLines(disk.daemon.output, 2)}`;
            await this.restart(disk.daemon, rec);
          } else {
            rec.note = `${disk.daemon.name} kept running`;
          }
        });
      }
    }
  }

  private async restart(d: Daemon, rec: FaultRecord): Promise<void> {
    if (d.isRunning) return;
    let lastError: unknown;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await d.start(false);
        return;
      } catch (e) {
        lastError = e;
      }
    }
    const why = `restart of ${d.name} failed: ${(lastError as Error).message.split('\n')[0]}`;
    rec.note = rec.note ? `${rec.note}; ${why}` : why;
  }

  private unshape(): void {
    for (const h of this.shaped) {
      Bun.spawnSync(this.c.net.argv(h, ['tc', 'qdisc', 'del', 'dev', 'eth0', 'root']), { stderr: 'ignore' });
      for (const chain of ['INPUT', 'OUTPUT']) Bun.spawnSync(this.c.net.argv(h, ['iptables', '-w', '-F', chain]), { stderr: 'ignore' });
    }
    this.shaped.clear();
  }

  private resume(): void {
    for (const d of this.paused) d.signal('SIGCONT');
    this.paused.clear();
  }

  /** Undo everything: links, drop rules, qdiscs, paused processes, the filled disk; start what is down. */
  async healAll(): Promise<string[]> {
    this.c.net.heal();
    this.unshape();
    this.resume();
    this.c.disk?.fs.free();
    const notes: string[] = [];
    for (const d of this.all) {
      if (d.isRunning) continue;
      const rec: FaultRecord = { kind: 'final-restart', at: Math.round(this.now()), targets: [d.name] };
      await this.restart(d, rec);
      notes.push(rec.note ?? `${d.name} was down at the end and was started again`);
    }
    return notes;
  }
}

function lastLines(s: string, n: number): string {
  return s.trimEnd().split('\n').slice(-n).join(' | ').slice(0, 400);
}
