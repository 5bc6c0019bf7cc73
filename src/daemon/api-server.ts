/**
 * The admin API's listeners: always the unix socket `<data-dir>/shoal.sock` (0600), and TCP with
 * mutual TLS when `--listen-tcp` asks for it (admin-tcp.ts). One Hono app serves both. With
 * `--metrics-addr`, a second TLS listener of the same kind serves `GET /metrics` of that app alone.
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
  /** `--metrics-addr`: as `tcp`, for a listener that answers only `/metrics`. */
  metricsTcp?: Omit<AdminTcpOptions, 'fetch' | 'what'>;
  deps: ApiDeps;
}

/** `/metrics`, with or without a `/v1.xx` prefix (stripVersion's shapes). */
const METRICS_PATH = /^(?:\/v\d+(?:\.\d+)?)?\/metrics$/;

export class ApiServer implements Service {
  readonly name = 'api';
  #servers: Server<unknown>[] = [];
  #tcp: AdminTcp | null = null;
  #metricsTcp: AdminTcp | null = null;

  constructor(private readonly o: ApiServerOptions) {}

  async start(): Promise<void> {
    const app = createApp(this.o.deps);
    rmSync(this.o.socketPath, { force: true });
    // No idle timeout: a stream may be quiet for hours (events, logs --follow), and Bun's default
    // (10 s) closes it; server.timeout(req, 0) does not lift it for a streamed body (Bun 1.4).
    // (Bun's types leave idleTimeout out of the unix-socket options; the runtime honours it.)
    // The body limit admits an upgrade's executable (`shoal fleet upgrade --binary`, ~100 MB).
    const unixOptions = { unix: this.o.socketPath, idleTimeout: 0, maxRequestBodySize: 512 * 1024 * 1024, fetch: (req: Request) => app.fetch(req) };
    this.#servers.push(Bun.serve(unixOptions as unknown as Parameters<typeof Bun.serve>[0]));
    chmodSync(this.o.socketPath, 0o600);
    if (this.o.tcp) this.#tcp = startAdminTcp({ ...this.o.tcp, fetch: (req, env) => app.fetch(req, env) });
    if (this.o.metricsTcp) {
      this.#metricsTcp = startAdminTcp({
        ...this.o.metricsTcp,
        what: { name: 'metrics', flag: '--metrics-addr' },
        fetch: (req, env) => METRICS_PATH.test(new URL(req.url).pathname)
          ? app.fetch(req, env)
          : Response.json({ message: 'this listener (--metrics-addr) serves GET /metrics only' }, { status: 404 }),
      });
    }
  }

  /** Open connections are closed too: a log stream that follows must not hold the stop. */
  async stop(): Promise<void> {
    for (const s of this.#servers) void s.stop(true);
    this.#servers = [];
    await this.#tcp?.stop();
    this.#tcp = null;
    await this.#metricsTcp?.stop();
    this.#metricsTcp = null;
  }

  removeSocket(): void {
    rmSync(this.o.socketPath, { force: true });
  }
}
