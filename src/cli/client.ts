/**
 * The CLI's client for the admin API: `unix:///path/shoal.sock` (Bun's fetch with `unix`) or
 * `tcp://host:port`, always mutual TLS with a client bundle (ca.pem, cert.pem, key.pem in
 * SHOAL_CERT_PATH, default ~/.shoal, as DOCKER_CERT_PATH). Errors from the API become ApiError
 * carrying the daemon's message; a daemon that cannot be reached becomes a message naming the address.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { defaultDataDir, socketPath } from '../lib/paths.ts';
import type { Cluster, Node, Service, ServiceSpec, Task } from '../types/index.ts';

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export class ConnectError extends Error {
  override name = 'ConnectError';
}

export function defaultHost(): string {
  return `unix://${socketPath(defaultDataDir())}`;
}

/** `-H` wins over SHOAL_HOST, which wins over the default socket. */
export function resolveHost(flag: string | undefined, env: Record<string, string | undefined> = process.env): string {
  return flag || env.SHOAL_HOST || defaultHost();
}

export interface Target { base: string; unix?: string; tls?: boolean }

/** What a `tcp://` host needs: the cluster CA to verify the daemon, and the client's certificate and key. */
export interface ClientTls { ca: string; cert: string; key: string }

export const BUNDLE_FILES = ['ca.pem', 'cert.pem', 'key.pem'] as const;

/** SHOAL_CERT_PATH, else ~/.shoal (Docker's DOCKER_CERT_PATH, ~/.docker). */
export function certPath(env: Record<string, string | undefined> = process.env): string {
  return env.SHOAL_CERT_PATH || join(env.HOME || homedir(), '.shoal');
}

/** The client bundle in `dir`, or a ConnectError saying how to get one. */
export function loadClientTls(dir: string, host: string): ClientTls {
  const read = (f: string) => {
    try {
      return readFileSync(join(dir, f), 'utf8');
    } catch (e) {
      throw new ConnectError(
        `${host} needs a client bundle (mutual TLS), and ${join(dir, f)} cannot be read (${(e as { code?: string }).code ?? (e as Error).message}): ` +
          `on a manager run "shoal ca client-bundle --name NAME --out DIR", copy DIR here, and point SHOAL_CERT_PATH at it (default ~/.shoal)`,
      );
    }
  };
  const [ca, cert, key] = BUNDLE_FILES.map(read) as [string, string, string];
  return { ca, cert, key };
}

export function parseHost(host: string): Target {
  if (host.startsWith('unix://')) {
    const path = host.slice('unix://'.length);
    if (!path.startsWith('/')) throw new ConnectError(`invalid host "${host}": expected unix:///absolute/path`);
    return { base: 'http://localhost', unix: path };
  }
  if (host.startsWith('/')) return { base: 'http://localhost', unix: host };
  if (host.startsWith('http://')) throw new ConnectError(`invalid host "${host}": the admin API has no plain HTTP over TCP; use tcp://host:port (mutual TLS)`);
  const m = /^(?:tcp|https):\/\/([^/]+)\/?$/.exec(host);
  if (m) return { base: `https://${m[1]}`, tls: true };
  throw new ConnectError(`invalid host "${host}": expected unix:///path/to/shoal.sock or tcp://host:port`);
}

export type Filters = Record<string, string[]>;

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** A body sent as it is (application/octet-stream), e.g. an executable; instead of `body`. */
  raw?: Blob;
  signal?: AbortSignal;
  /** A stream (logs): no time bound but `signal`. */
  stream?: boolean;
}

/** Bound on one request/response; a daemon that does not answer within it is reported. */
export const REQUEST_TIMEOUT_MS = 30_000;

export class Client {
  readonly target: Target;
  readonly #tls: ClientTls | undefined;
  /** `certDir`: where a `tcp://` host's client bundle is (default: SHOAL_CERT_PATH, ~/.shoal). */
  constructor(readonly host: string, readonly certDir = certPath()) {
    this.target = parseHost(host);
    if (this.target.tls) this.#tls = loadClientTls(certDir, host);
  }

  async request(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) qs.set(k, String(v));
    const url = `${this.target.base}${path}${qs.size ? `?${qs}` : ''}`;
    const bound = opts.stream ? undefined : AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    const signal = bound && opts.signal ? AbortSignal.any([bound, opts.signal]) : (bound ?? opts.signal);
    const init: RequestInit & { unix?: string } = { method, signal };
    if (this.target.unix) init.unix = this.target.unix;
    if (this.#tls) (init as { tls?: unknown }).tls = { ...this.#tls, rejectUnauthorized: true };
    if (opts.body !== undefined) {
      init.body = JSON.stringify(opts.body);
      init.headers = { 'content-type': 'application/json' };
    } else if (opts.raw !== undefined) {
      init.body = opts.raw;
      init.headers = { 'content-type': 'application/octet-stream' };
    }
    let res: Response;
    try {
      res = await fetch(url, init);
    } catch (e) {
      if (bound?.aborted) throw new ConnectError(`the shoal daemon at ${this.host} did not answer within ${REQUEST_TIMEOUT_MS / 1000}s`);
      if ((e as Error).name === 'AbortError') throw e;
      const code = (e as { code?: string }).code;
      if (this.#tls && code && code !== 'ConnectionRefused' && code !== 'ECONNREFUSED') {
        throw new ConnectError(
          `the TLS handshake with ${this.host} failed (${code}: ${(e as Error).message}): the daemon refuses the client bundle in ${this.certDir} ` +
            `(expired, or from another cluster's CA?), or its certificate is not from that bundle's ca.pem; make a new bundle with "shoal ca client-bundle" on a manager`,
        );
      }
      throw new ConnectError(
        `cannot connect to the shoal daemon at ${this.host}${code ? ` (${code})` : ''}: is it running? Start it with "shoal daemon", or point -H / SHOAL_HOST at it`,
      );
    }
    if (!res.ok) {
      const text = await res.text();
      let message = text.trim() || res.statusText;
      try {
        const j = JSON.parse(text) as { message?: unknown };
        if (typeof j.message === 'string') message = j.message;
      } catch {}
      throw new ApiError(res.status, message);
    }
    return res;
  }

  async json<T>(method: string, path: string, opts?: RequestOptions): Promise<T> {
    const res = await this.request(method, path, opts);
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  // ------------------------------------------------------------ typed helpers

  info(): Promise<any> { return this.json('GET', '/info'); }
  version(): Promise<any> { return this.json('GET', '/version'); }
  cluster(): Promise<Cluster> { return this.json('GET', '/swarm'); }
  initCluster(req: { ListenAddr?: string; AdvertiseAddr?: string; Spec?: Record<string, unknown> } = {}): Promise<string> { return this.json('POST', '/swarm/init', { body: req }); }
  joinCluster(req: { RemoteAddrs: string[]; JoinToken: string; ListenAddr?: string; AdvertiseAddr?: string }): Promise<string> { return this.json('POST', '/swarm/join', { body: req }); }
  async leaveCluster(force: boolean): Promise<void> { await this.request('POST', '/swarm/leave', { query: force ? { force: 'true' } : {} }); }
  async removeNode(ref: string, force: boolean): Promise<void> { await this.request('DELETE', `/nodes/${encodeURIComponent(ref)}`, { query: force ? { force: 'true' } : {} }); }
  /** Docker's swarm update: `spec` holds the fields to change (the daemon keeps the others). */
  async updateCluster(version: number, spec: Record<string, unknown>): Promise<void> {
    await this.request('POST', '/swarm/update', { query: { version }, body: spec });
  }
  async rotateJoinToken(role: 'worker' | 'manager'): Promise<void> {
    await this.request('POST', '/swarm/update', { query: role === 'worker' ? { rotateWorkerToken: 'true' } : { rotateManagerToken: 'true' } });
  }

  services(filters?: Filters, status = false): Promise<(Service & { ServiceStatus?: { RunningTasks: number; DesiredTasks: number; CompletedTasks: number } })[]> {
    return this.json('GET', '/services', { query: { filters: filters && JSON.stringify(filters), status: status || undefined } });
  }
  service(ref: string): Promise<Service> { return this.json('GET', `/services/${encodeURIComponent(ref)}`); }
  createService(spec: ServiceSpec): Promise<{ ID: string; Warnings: string[] }> { return this.json('POST', '/services/create', { body: spec }); }
  updateService(id: string, version: number, spec: ServiceSpec): Promise<{ Warnings: string[] }> {
    return this.json('POST', `/services/${encodeURIComponent(id)}/update`, { query: { version }, body: spec });
  }
  /** Docker's server-side rollback: the previous spec comes back (the body is ignored). */
  rollbackService(id: string, version: number): Promise<{ Warnings: string[] }> {
    return this.json('POST', `/services/${encodeURIComponent(id)}/update`, { query: { version, rollback: 'previous' }, body: {} });
  }
  async removeService(ref: string): Promise<void> { await this.request('DELETE', `/services/${encodeURIComponent(ref)}`); }
  serviceLogs(ref: string, query: RequestOptions['query'], signal?: AbortSignal): Promise<Response> {
    return this.request('GET', `/services/${encodeURIComponent(ref)}/logs`, { query, signal, stream: true });
  }

  taskLogs(ref: string, query: RequestOptions['query'], signal?: AbortSignal): Promise<Response> {
    return this.request('GET', `/tasks/${encodeURIComponent(ref)}/logs`, { query, signal, stream: true });
  }

  tasks(filters?: Filters, signal?: AbortSignal): Promise<Task[]> {
    return this.json('GET', '/tasks', { query: { filters: filters && JSON.stringify(filters) }, signal });
  }
  task(ref: string): Promise<Task> { return this.json('GET', `/tasks/${encodeURIComponent(ref)}`); }

  nodes(filters?: Filters): Promise<Node[]> { return this.json('GET', '/nodes', { query: { filters: filters && JSON.stringify(filters) } }); }
  node(ref: string): Promise<Node> { return this.json('GET', `/nodes/${encodeURIComponent(ref)}`); }
  async updateNode(id: string, version: number, spec: Node['Spec']): Promise<void> {
    await this.request('POST', `/nodes/${encodeURIComponent(id)}/update`, { query: { version }, body: spec });
  }
}
