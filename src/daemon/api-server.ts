/**
 * The admin API's listeners: always the unix socket `<data-dir>/shoal.sock` (0600), and TCP when
 * `--listen-tcp` asks for it. One Hono app serves both.
 */
import { chmodSync, rmSync } from 'node:fs';
import type { Server } from 'bun';
import type { Hono } from 'hono';
import { createApp } from '../api/index.ts';
import type { ApiDeps } from '../api/deps.ts';
import { UnavailableError } from '../lib/errors.ts';
import type { Service } from './service.ts';

export interface ApiServerOptions {
  socketPath: string;
  /** `--listen-tcp` HOST:PORT; no TCP listener when absent. */
  tcp?: string;
  deps: ApiDeps;
}

export class ApiServer implements Service {
  readonly name = 'api';
  #servers: Server<unknown>[] = [];

  constructor(private readonly o: ApiServerOptions) {}

  async start(): Promise<void> {
    const app = createApp(this.o.deps);
    rmSync(this.o.socketPath, { force: true });
    this.#servers.push(Bun.serve({ unix: this.o.socketPath, fetch: (req: Request) => app.fetch(req) }));
    chmodSync(this.o.socketPath, 0o600);
    if (this.o.tcp) this.#servers.push(serveTcp(app, this.o.tcp));
  }

  /** Open connections are closed too: a log stream that follows must not hold the stop. */
  async stop(): Promise<void> {
    for (const s of this.#servers) void s.stop(true);
    this.#servers = [];
  }

  removeSocket(): void {
    rmSync(this.o.socketPath, { force: true });
  }
}

/** The admin API on TCP at `addr` (HOST:PORT). Plain HTTP for now. */
export function serveTcp(app: Hono, addr: string): Server<unknown> {
  const m = /^(.*):(\d+)$/.exec(addr);
  if (!m) throw new UnavailableError(`--listen-tcp "${addr}": expected HOST:PORT`);
  return Bun.serve({ hostname: m[1] || '127.0.0.1', port: Number(m[2]), fetch: (req: Request) => app.fetch(req), idleTimeout: 0 });
}
