/**
 * Network-namespace fixtures for the overlay tests (not imported by production code): a run tag in
 * every name, why the tests cannot run here (if so), two "hosts" joined by a veth underlay, a TCP
 * echo server and client run inside namespaces with this Bun, and cleanup of everything tagged.
 */
import { randomBytes } from 'node:crypto';
import { type CmdResult, hostRunner, must } from './netlink-cmd.ts';

export const root = hostRunner();

export class NetnsLab {
  readonly tag = randomBytes(3).toString('hex');
  private procs: ReturnType<typeof Bun.spawn>[] = [];

  /** `shov-<tag>-<suffix>`: short enough for `ip netns`, unique per run. */
  ns(suffix: string): string {
    return `shov-${this.tag}-${suffix}`;
  }

  /** Why namespace tests cannot run here, or null. Probes VXLAN in a scratch namespace. */
  whyNot(): string | null {
    if (process.platform !== 'linux') return 'overlay tests need Linux';
    if (process.getuid?.() !== 0) return 'overlay tests need root (network namespaces, bridges, VXLAN); CI runs them as root';
    if (!Bun.which('ip') || !Bun.which('bridge')) return 'overlay tests need iproute2 (ip, bridge): apt-get install iproute2';
    const probe = this.ns('probe');
    try {
      if (Bun.spawnSync(['ip', 'netns', 'add', probe]).exitCode !== 0) return 'cannot create a network namespace';
      const vx = Bun.spawnSync(['ip', '-n', probe, 'link', 'add', 'vx', 'type', 'vxlan', 'id', '1', 'dstport', '4789', 'local', '127.0.0.1', 'nolearning'], { stderr: 'pipe' });
      if (vx.exitCode !== 0) return `this kernel has no VXLAN: ${vx.stderr.toString().trim()}`;
    } finally {
      Bun.spawnSync(['ip', 'netns', 'del', probe]);
    }
    return null;
  }

  async add(...names: string[]): Promise<void> {
    for (const n of names) await must(root, ['ip', 'netns', 'add', n]);
  }

  /** Two host namespaces joined by a veth pair `ul0`, with these underlay addresses (/24), up. */
  async underlay(a: string, b: string, addrA: string, addrB: string): Promise<void> {
    await must(root, ['ip', '-n', a, 'link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul0', 'netns', b]);
    for (const [ns, addr] of [[a, addrA], [b, addrB]] as const) {
      await must(root, ['ip', '-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'ul0']);
      await must(root, ['ip', '-n', ns, 'link', 'set', 'ul0', 'up']);
      await must(root, ['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    }
  }

  async list(): Promise<string[]> {
    const r = await root(['ip', 'netns', 'list']);
    return r.stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(`shov-${this.tag}`));
  }

  async links(ns: string): Promise<string[]> {
    const r = await root(['ip', '-n', ns, '-j', 'link', 'show']);
    return (JSON.parse(r.stdout) as { ifname: string }[]).map((l) => l.ifname).sort();
  }

  /** A process inside `ns`, killed by cleanup(). */
  spawnIn(ns: string, argv: string[], stdout: 'pipe' | 'ignore' = 'ignore'): ReturnType<typeof Bun.spawn> {
    const p = Bun.spawn(['ip', 'netns', 'exec', ns, ...argv], { stdout, stderr: 'inherit' });
    this.procs.push(p);
    return p;
  }

  /** A TCP echo server inside `ns`, resolved once it listens. */
  async echoServer(ns: string, host: string, port: number): Promise<void> {
    const code = `Bun.listen({ hostname: ${JSON.stringify(host)}, port: ${port}, socket: { data(s, d) { s.write(d); } } }); console.log('listening');`;
    const p = this.spawnIn(ns, [process.execPath, '-e', code], 'pipe');
    const reader = (p.stdout as ReadableStream<Uint8Array>).getReader();
    const { value } = await Promise.race([reader.read(), Bun.sleep(10_000).then(() => ({ value: undefined }))]);
    reader.releaseLock();
    if (!value || !new TextDecoder().decode(value).includes('listening')) throw new Error(`echo server in ${ns} did not start`);
  }

  /** One TCP round trip from inside `ns`: exit 0 and the reply, or the failure (bounded by `boundMs`). */
  echoOnce(ns: string, host: string, port: number, text: string, boundMs = 3000): Promise<CmdResult> {
    const code = `const t = setTimeout(() => process.exit(4), ${boundMs});
      await Bun.connect({ hostname: ${JSON.stringify(host)}, port: ${port}, socket: {
        open(s) { s.write(${JSON.stringify(text)}); },
        data(s, d) { process.stdout.write(d.toString()); clearTimeout(t); s.end(); process.exit(0); },
        connectError() { process.exit(3); }, error() { process.exit(2); } } });`;
    return hostRunner({ name: ns })([process.execPath, '-e', code]);
  }

  /** Kill what was spawned and delete every namespace of this run (devices in them go too). */
  async cleanup(): Promise<void> {
    for (const p of this.procs) p.kill('SIGKILL');
    await Promise.all(this.procs.map((p) => p.exited));
    for (const ns of await this.list()) await root(['ip', 'netns', 'del', ns]);
  }
}
