/**
 * The admin API's listeners: always the unix socket `<data-dir>/shoal.sock` (0600), and TCP with
 * mutual TLS when `--listen-tcp` asks for it (admin-tcp.ts). One Hono app serves both.
 */
import { chmodSync, rmSync } from 'node:fs';
import type { Server } from 'bun';
import { createApp } from '../api/index.ts';
import type { ApiDeps } from '../api/deps.ts';
import { type AdminTcp, type AdminTcpOptions, startAdminTcp } from './admin-tcp.ts';
import type { Service } from '../lib/lifecycle.ts';

export interface ApiServerOptions {
  socketPath: string;
  /** `--listen-tcp`: the address and what the TLS listener checks clients against; none when absent. */
  tcp?: Omit<AdminTcpOptions, 'fetch'>;
  deps: ApiDeps;
}

export class ApiServer implements Service {
  readonly name = 'api';
  #servers: Server<unknown>[] = [];
  #tcp: AdminTcp | null = null;

  constructor(private readonly o: ApiServerOptions) {}

  async start(): Promise<void> {
    const app = createApp(this.o.deps);
    rmSync(this.o.socketPath, { force: true });
    this.#servers.push(Bun.serve({ unix: this.o.socketPath, fetch: (req: Request) => app.fetch(req) }));
    chmodSync(this.o.socketPath, 0o600);
    if (this.o.tcp) this.#tcp = startAdminTcp({ ...this.o.tcp, fetch: (req, env) => app.fetch(req, env) });
  }

  /** Open connections are closed too: a log stream that follows must not hold the stop. */
  async stop(): Promise<void> {
    for (const s of this.#servers) void s.stop(true);
    this.#servers = [];
    await this.#tcp?.stop();
    this.#tcp = null;
  }

  removeSocket(): void {
    rmSync(this.o.socketPath, { force: true });
  }
}
