/**
 * A dist/shoal daemon whose process runs inside a namespace host (test/netns/hosts.ts); its API and
 * CLI are reached as in the loopback harness, through the unix socket in its data dir.
 */
import { rmSync } from 'node:fs';
import { Daemon, requireBinary, SHOAL, waitFor } from '../integration/harness.ts';
import type { NetHost, NetnsHosts } from './hosts.ts';

export class HostDaemon extends Daemon {
  constructor(private readonly net: NetnsHosts, readonly host: NetHost, dataDir: string, readonly args: string[]) {
    super(dataDir, args);
  }

  get addr(): string {
    return `${this.host.ip}:4242`;
  }

  override async start(init = false): Promise<this> {
    requireBinary();
    rmSync(this.socket, { force: true });
    const cmd = [SHOAL, 'daemon', '--data-dir', this.dataDir, '--listen-addr', this.addr, ...(init ? ['--init'] : []), ...this.args];
    const p = this.net.spawn(this.host, cmd, { env: this.env });
    this.proc = p as unknown as Daemon['proc'];
    for (const s of [p.stdout, p.stderr]) {
      void (async () => {
        for await (const chunk of s as ReadableStream<Uint8Array>) this.output += new TextDecoder().decode(chunk);
      })();
    }
    await waitFor(`the daemon API in host ${this.host.index}`, async () => {
      if (p.exitCode !== null) throw new Error(`daemon exited with ${p.exitCode}: ${this.output}`);
      return (await this.api('/_ping')).ok;
    });
    return this;
  }
}
