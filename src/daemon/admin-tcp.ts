/**
 * `--listen-tcp HOST:PORT`: the admin API over TCP, only with mutual TLS (TLS 1.3), as Docker's
 * `--tlsverify` daemon: the server presents a certificate from the cluster CA and requires a client
 * certificate signed by it. The TLS layer checks the chain and the dates; every request is then
 * checked here against what the store holds now (a client bundle's role, the cluster, revocations),
 * so a revocation takes effect on connections already open. The client's identity reaches the API
 * as Hono's env (`{ client }`), from which the routes learn its role.
 *
 * node:tls, not Bun.serve: Bun.serve does not expose the peer's certificate to the handler. The TLS
 * socket is handed to a node:http server, whose requests are bridged to the app's fetch.
 */
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { hostname, networkInterfaces } from 'node:os';
import { Readable } from 'node:stream';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { ApiClient, ApiEnv } from '../api/client-auth.ts';
import { statusOf } from '../api/middleware.ts';
import { errorMessage, InvalidArgumentError, ShoalError, UnavailableError } from '../lib/errors.ts';
import type { RevokedClientCert } from '../manager/dispatcher/protocol.ts';
import type { MemoryStore } from '../store/index.ts';
import type { Cluster } from '../types/index.ts';
import { caEpochOf, trustPemOf } from '../manager/ca/epoch.ts';

export interface ServerCert {
  certPem: string;
  keyPem: string;
  /** The cluster's root: what client certificates must chain to. */
  caPem: string;
  /** When to fetch the next one. */
  renewInMs: number;
}

/**
 * How a worker serves a listener (only `--metrics-addr`): it holds neither the store nor the CA
 * key, so its server certificate comes from a manager and the revoked bundles from the dispatcher.
 */
export interface WorkerTlsSource {
  /** A server certificate for `hosts`; resolves once a manager issued one (retrying meanwhile), rejects once `signal` aborts. */
  serverCert(hosts: string[], signal: AbortSignal): Promise<ServerCert>;
  /** The id of the cluster this host is in; null before it is in one. */
  clusterId(): string | null;
  /** Revoked bundles by serial, as the dispatcher last sent them; null until it has. */
  revocations(): ReadonlyMap<string, RevokedClientCert> | null;
}

export interface AdminTcpOptions {
  /** `HOST:PORT` (`[::]:PORT` for IPv6); HOST defaults to 127.0.0.1. */
  addr: string;
  fetch: (req: Request, env: ApiEnv) => Response | Promise<Response>;
  store: MemoryStore;
  nodeId: string;
  /**
   * This host's role now: the TCP API needs the CA and the revocations, which only managers hold;
   * a worker serves only a listener given `worker`.
   */
  role: () => 'manager' | 'worker' | null;
  /** Set for `--metrics-addr`: how this listener is served on a worker. */
  worker?: WorkerTlsSource;
  /** Makes the cluster's CA when it does not exist yet (it is made on demand). */
  identityReady: () => Promise<void>;
  log: (msg: string) => void;
  /**
   * What this listener is, in its log lines and address errors: the admin API (`--listen-tcp`, the
   * default) or the metrics alone (`--metrics-addr`, the same TLS; its fetch serves only /metrics).
   */
  what?: { name: string; flag: string };
  /** Server certificate lifetime (tests); default 90 days, renewed at two thirds of it. */
  certLifetimeMs?: number;
}

export interface AdminTcp {
  /** Resolves once listening (or when it will not listen: a worker, stopped); rejects when listening failed. */
  readonly ready: Promise<void>;
  /** The bound address once listening. */
  address(): { host: string; port: number } | null;
  stop(): Promise<void>;
}

const READ_ONLY_METHODS = new Set(['GET', 'HEAD']);

export function parseTcpAddr(addr: string, flag = '--listen-tcp'): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]*)):(\d{1,5})$/.exec(addr.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new InvalidArgumentError(`${flag} "${addr}": expected HOST:PORT, e.g. 0.0.0.0:2376`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** Names a client may reach the API by: what the server certificate is issued for. */
export function serverNames(host: string): string[] {
  const names = ['localhost', '127.0.0.1', '::1', hostname()];
  if (host === '0.0.0.0' || host === '::') {
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (!a.address.includes('%')) names.push(a.address);
  } else names.push(host);
  return [...new Set(names)];
}

export function startAdminTcp(opts: AdminTcpOptions): AdminTcp {
  const at = parseTcpAddr(opts.addr, opts.what?.flag);
  return new AdminTcpServer(opts, at);
}

class AdminTcpServer implements AdminTcp {
  readonly ready: Promise<void>;
  #tls: ReturnType<typeof createTlsServer> | null = null;
  #sockets = new Set<TLSSocket>();
  #stopped = false;
  #renewTimer: ReturnType<typeof setTimeout> | undefined;
  #unwatch: (() => void) | null = null;
  #wakeup: (() => void) | null = null;
  readonly #abort = new AbortController();
  #rootsUnwatch: (() => void) | null = null;
  #refusals = 0;
  #lastRefusalLogMs = -Infinity;
  readonly #what: string;

  constructor(private readonly opts: AdminTcpOptions, private readonly at: { host: string; port: number }) {
    this.#what = opts.what?.name ?? 'admin API';
    this.ready = this.#start();
    this.ready.catch((err) => opts.log(`${opts.what?.name ?? 'admin API'} on TCP ${opts.addr}: ${errorMessage(err)}`));
  }

  address(): { host: string; port: number } | null {
    const a = this.#tls?.address();
    return a && typeof a === 'object' ? { host: a.address, port: a.port } : null;
  }

  async #start(): Promise<void> {
    const { store, log } = this.opts;
    if (!this.opts.role()) {
      log(`${this.#what} on TCP ${this.opts.addr}: waits until this host is in a cluster (its CA issues the certificates)`);
      await this.#until(() => this.opts.role() !== null);
    }
    if (this.#stopped) return;
    if (this.opts.role() !== 'manager') {
      if (!this.opts.worker) {
        log(`${this.#what} on TCP ${this.opts.addr}: not served, this node is a worker (managers serve it; a worker holds no cluster state)`);
        return;
      }
      log(`${this.#what} on TCP ${this.opts.addr}: asking a manager for this worker's server certificate`);
    } else if (!currentCluster(store)?.RootCA) {
      // The first manager makes the CA now; a manager that joined receives it with the raft log.
      this.opts.identityReady().catch((err) => log(`${this.#what} on TCP ${this.opts.addr}: the cluster CA: ${errorMessage(err)}`));
      await this.#until(() => !!currentCluster(store)?.RootCA);
    }
    if (this.#stopped) return;
    let first: ServerCert;
    try {
      first = await this.#serverCert();
    } catch (err) {
      if (this.#stopped) return;
      throw err;
    }
    const { certPem, keyPem, caPem, renewInMs } = first;
    const http = createHttpServer((req, res) => void this.#handle(req, res));
    const tls = createTlsServer({ key: keyPem, cert: certPem, ca: caPem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
      http.emit('connection', socket);
    });
    tls.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => this.#refusedHandshake(err, socket));
    this.#tls = tls;
    tls.listen(this.at.port, this.at.host);
    await Promise.race([once(tls, 'listening'), once(tls, 'error').then(([err]) => Promise.reject(new UnavailableError(`cannot listen: ${errorMessage(err)}`)))]);
    if (this.#stopped) return void tls.close();
    const a = this.address();
    log(`${this.#what} on tcp://${a?.host}:${a?.port}, mutual TLS only (client bundles: "shoal ca client-bundle")`);
    this.#scheduleRenewal(renewInMs);
    this.#watchRoots();
  }

  /**
   * A root rotation: clients are verified against the old and the new root while it runs (bundles
   * from either work), and the server certificate comes from the new root once it is done; from
   * then on bundles from the old root are refused (as Docker's, they last until the rotation ends).
   */
  #watchRoots(): void {
    let seen = caState(this.opts.store);
    this.#rootsUnwatch = this.opts.store.watch((ev) => {
      if (ev.kind !== 'commit' || this.#stopped) return;
      const now = caState(this.opts.store);
      if (now === seen) return;
      seen = now;
      this.#scheduleRenewal(0);
    });
  }

  /** Resolves when `cond` holds (checked at each store change), or when stopped. */
  async #until(cond: () => boolean): Promise<void> {
    while (!cond() && !this.#stopped) {
      await new Promise<void>((resolve) => {
        this.#wakeup = resolve;
        this.#unwatch = this.opts.store.watch(() => resolve());
      });
      this.#unwatch?.();
    }
  }

  async #serverCert(): Promise<ServerCert> {
    // A worker's comes from a manager; read at each renewal, so a demoted manager's comes from one too.
    if (this.opts.role() !== 'manager' && this.opts.worker) return this.opts.worker.serverCert(serverNames(this.at.host), this.#abort.signal);
    const cluster = currentCluster(this.opts.store);
    if (!cluster?.RootCA) throw new UnavailableError('the cluster has no root CA yet');
    const [{ RootCA }, { issueApiServerCert }] = await Promise.all([import('../manager/ca/root.ts'), import('../manager/ca/client-cert.ts')]);
    if (!cluster.RootCA.CAKey) throw new UnavailableError('the root CA key is held by an external CA: the admin API over TCP needs it here (use the unix socket)');
    const ca = await RootCA.fromPem(cluster.RootCA.CACert, cluster.RootCA.CAKey);
    const issued = await issueApiServerCert(ca, { clusterId: cluster.ID, nodeId: this.opts.nodeId, hosts: serverNames(this.at.host), lifetimeMs: this.opts.certLifetimeMs });
    return { certPem: issued.certPem, keyPem: issued.keyPem, caPem: trustPemOf(cluster.RootCA), renewInMs: Math.floor((issued.notAfter - Date.now()) * 2 / 3) };
  }

  /**
   * A refused handshake (no certificate, another CA, expired, plain HTTP) is logged, so that an admin
   * can tell a user why; at most one line a minute, with the count of the others, since anyone who
   * reaches the port can cause them.
   */
  #refusedHandshake(err: Error & { code?: string }, socket: TLSSocket): void {
    const now = Date.now();
    this.#refusals++;
    if (now - this.#lastRefusalLogMs < 60_000) return;
    const others = this.#refusals - 1;
    this.#lastRefusalLogMs = now;
    this.#refusals = 0;
    this.opts.log(`${this.#what} on TCP: refused a TLS handshake${socket.remoteAddress ? ` from ${socket.remoteAddress}` : ''}: ${err.code ?? err.message}${others > 0 ? ` (and ${others} more since the last such line)` : ''}`);
  }

  #scheduleRenewal(inMs: number): void {
    clearTimeout(this.#renewTimer);
    // setTimeout's longest delay; a later renewal is scheduled again from there.
    this.#renewTimer = setTimeout(() => {
      void this.#serverCert().then(
        ({ certPem, keyPem, caPem, renewInMs }) => {
          this.#tls?.setSecureContext({ key: keyPem, cert: certPem, ca: caPem, minVersion: 'TLSv1.3' });
          this.#scheduleRenewal(renewInMs);
        },
        (err) => {
          if (this.#stopped) return;
          this.opts.log(`${this.#what} on TCP: server certificate renewal failed: ${errorMessage(err)}; retrying in a minute`);
          this.#scheduleRenewal(60_000);
        },
      );
    }, inMs === 0 ? 0 : Math.max(1000, Math.min(inMs, 2 ** 31 - 1)));
  }

  /**
   * What a client bundle is checked against now: on a manager the store (the cluster, its
   * revocations); on a worker serving metrics, the list its dispatcher session last brought.
   */
  #checks(): { clusterId: string; revokedAt: (serial: string) => string | undefined } {
    if (this.opts.role() === 'manager') {
      const cluster = currentCluster(this.opts.store);
      if (!cluster) throw new UnavailableError('this node is not in a cluster');
      return { clusterId: cluster.ID, revokedAt: (serial) => cluster.ClientCerts?.find((r) => r.Serial === serial)?.RevokedAt };
    }
    const worker = this.opts.worker;
    if (!worker) throw new UnavailableError('this node is not a manager any more: point the client at a manager');
    const clusterId = worker.clusterId();
    if (!clusterId) throw new UnavailableError('this node is not in a cluster');
    const revoked = worker.revocations();
    // Never unchecked: until a manager said which bundles are revoked, no bundle is known good.
    if (!revoked) throw new UnavailableError('this worker has not yet received the revoked client bundles from a manager (its dispatcher session brings them): try again shortly');
    return { clusterId, revokedAt: (serial) => revoked.get(serial)?.at };
  }

  /** Who the verified peer certificate names, or why it may not use the API (thrown, with a status). */
  async #authorize(socket: TLSSocket): Promise<ApiClient> {
    const checks = this.#checks();
    const raw = socket.getPeerCertificate?.()?.raw;
    if (!raw) throw new ForbiddenTcpError('no client certificate: make a client bundle with "shoal ca client-bundle" on a manager');
    const { readClientCert } = await import('../manager/ca/client-cert.ts');
    const id = readClientCert(new Uint8Array(raw), { clusterId: checks.clusterId });
    const revokedAt = checks.revokedAt(id.serial);
    if (revokedAt) throw new ForbiddenTcpError(`the client bundle of "${id.name}" (serial ${id.serial}) was revoked at ${revokedAt}`);
    return { name: id.name, role: id.role, serial: id.serial };
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let client: ApiClient;
    try {
      client = await this.#authorize(req.socket as TLSSocket);
    } catch (err) {
      req.resume();
      return sendError(res, err);
    }
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    try {
      const response = await this.opts.fetch(toRequest(req, ac.signal), { client });
      await writeResponse(res, response, req.method === 'HEAD');
    } catch (err) {
      if (!res.headersSent) sendError(res, err);
      else res.destroy();
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort(new UnavailableError('stopped'));
    clearTimeout(this.#renewTimer);
    this.#unwatch?.();
    this.#rootsUnwatch?.();
    this.#wakeup?.();
    const tls = this.#tls;
    if (!tls) return;
    const closed = new Promise<void>((resolve) => tls.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }
}

function caState(store: MemoryStore): string {
  const root = currentCluster(store)?.RootCA;
  return root ? caEpochOf(root) : '';
}

class ForbiddenTcpError extends ShoalError {
  override readonly status = 403;
}

function currentCluster(store: MemoryStore): Cluster | undefined {
  return store.list('clusters')[0];
}

function sendError(res: ServerResponse, err: unknown): void {
  const body = JSON.stringify({ message: errorMessage(err) });
  res.writeHead(statusOf(err), { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function toRequest(req: IncomingMessage, signal: AbortSignal): Request {
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
  const hasBody = !READ_ONLY_METHODS.has(req.method ?? 'GET');
  // The routes look at the path only; a Host header is the client's to choose and is not trusted here.
  const url = new URL(req.url ?? '/', 'https://localhost').href;
  return new Request(url, {
    method: req.method,
    headers,
    signal,
    ...(hasBody ? { body: Readable.toWeb(req) as unknown as ReadableStream, duplex: 'half' } : {}),
  } as RequestInit);
}

/** The response out, a streamed body (logs --follow) with back-pressure. */
async function writeResponse(res: ServerResponse, response: Response, head: boolean): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((v, k) => {
    headers[k] = v;
  });
  res.writeHead(response.status, headers);
  if (!response.body || head) return void res.end();
  for await (const chunk of response.body) {
    if (res.destroyed) break;
    if (!res.write(chunk)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
  }
  res.end();
}
