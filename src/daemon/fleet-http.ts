/**
 * Fleet boot over HTTP: a manager serves its own executable and an install script that points back at
 * it, so a new host needs only
 *
 *   curl -fsSL http://MANAGER:PORT/install.sh | sh -s -- --join MANAGER:LISTEN_PORT --token T
 *
 * Three public, read-only paths and nothing else: GET /install.sh, GET /shoal, GET /shoal.sha256.
 * The admin API is never reachable here, and no secret is served (the join token travels on the
 * command line, never through this server). Off unless `shoal daemon --fleet-addr IP:PORT` asks for it,
 * on its own port: the libp2p listener speaks TLS + yamux and the admin API is for administrators, so
 * neither is mixed with an unauthenticated download server.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { arch as osArch } from 'node:os';
import type { Server } from 'bun';
import installScript from '../../install.sh' with { type: 'text' };
import { UnavailableError } from '../lib/errors.ts';
import type { Service } from '../lib/lifecycle.ts';

export interface FleetHttpOptions {
  /** The executable to serve; null when there is none to serve (a daemon running from source). */
  executablePath: string | null;
  /** The architecture of that executable, in install.sh's words (amd64, arm64). */
  arch: string;
}

/** The running executable when this process is a compiled shoal; null under `bun src/main.ts`. */
export function compiledExecutable(): string | null {
  return Bun.main.startsWith('/$bunfs/') ? process.execPath : null;
}

/** This process's architecture in install.sh's words. */
export function hostArch(): string {
  const a = osArch();
  return a === 'x64' ? 'amd64' : a;
}

/** The repository's install.sh with its default source set to `binaryUrl` (an executable for `arch`). */
export function installScriptFor(binaryUrl: string, arch: string): string {
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const out = installScript
    .replace(/^SHOAL_DEFAULT_URL=$/m, `SHOAL_DEFAULT_URL=${q(binaryUrl)}`)
    .replace(/^SHOAL_DEFAULT_ARCH=$/m, `SHOAL_DEFAULT_ARCH=${q(arch)}`);
  if (!out.includes(`SHOAL_DEFAULT_URL=${q(binaryUrl)}`)) throw new Error('install.sh has no SHOAL_DEFAULT_URL= line to fill in');
  return out;
}

/** sha256 of a file, cached while its size and mtime stay the same (an upgrade in place changes them). */
class FileDigest {
  private cached: { key: string; hex: Promise<string> } | null = null;
  constructor(private readonly path: string) {}

  hex(): Promise<string> {
    const st = statSync(this.path);
    const key = `${st.size}:${st.mtimeMs}:${st.ino}`;
    if (this.cached?.key !== key) this.cached = { key, hex: digestFile(this.path) };
    const entry = this.cached;
    entry.hex.catch(() => {
      if (this.cached === entry) this.cached = null;
    });
    return entry.hex;
  }
}

async function digestFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of Bun.file(path).stream()) h.update(chunk);
  return h.digest('hex');
}

// A Host header goes into a shell script: accept only what a host[:port] can be.
const HOST_HEADER = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/;

/** The request handler: three paths, GET/HEAD only. */
export function fleetHandler(opts: FleetHttpOptions): (req: Request) => Promise<Response> {
  const digest = opts.executablePath ? new FileDigest(opts.executablePath) : null;
  const text = (body: string, status = 200) => new Response(body, { status, headers: { 'content-type': 'text/plain; charset=utf-8' } });
  return async (req) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return text('only GET and HEAD\n', 405);
    const path = new URL(req.url).pathname;
    if (path !== '/install.sh' && path !== '/shoal' && path !== '/shoal.sha256') return text('not found: this server offers /install.sh, /shoal and /shoal.sha256\n', 404);
    if (!opts.executablePath || !digest) return text('this daemon does not run from a compiled executable: nothing to serve (build dist/shoal)\n', 404);
    if (path === '/install.sh') {
      const host = req.headers.get('host') ?? '';
      if (!HOST_HEADER.test(host)) return text('bad Host header\n', 400);
      return text(installScriptFor(`http://${host}/shoal`, opts.arch));
    }
    if (path === '/shoal.sha256') return text(`${await digest.hex()}  shoal\n`);
    return new Response(Bun.file(opts.executablePath), { headers: { 'content-type': 'application/octet-stream' } });
  };
}

/** Parse IP:PORT ([v6]:PORT too) for --fleet-addr. */
export function parseFleetAddr(addr: string): { hostname: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new UnavailableError(`--fleet-addr "${addr}": expected IP:PORT (e.g. 0.0.0.0:4243)`);
  return { hostname: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** Serve the fleet files on `addr`; the server stops with the daemon. */
export function startFleetHttp(addr: string, log: (msg: string) => void, opts: FleetHttpOptions = { executablePath: compiledExecutable(), arch: hostArch() }): Server<unknown> {
  const { hostname, port } = parseFleetAddr(addr);
  const handler = fleetHandler(opts);
  // A slow link may pause a 100 MB download for a while; a stalled client is still dropped.
  const server = Bun.serve({ hostname, port, fetch: handler, idleTimeout: 120 });
  const where = `http://${hostname.includes(':') ? `[${hostname}]` : hostname}:${server.port}`;
  if (opts.executablePath) log(`fleet: serving install.sh and ${opts.executablePath} (linux-${opts.arch}) on ${where}; a new host: curl -fsSL ${where}/install.sh | sh -s -- --join MANAGER:PORT --token TOKEN`);
  else log(`fleet: ${where} has no executable to serve (this daemon runs from source)`);
  return server;
}

/** `--fleet-addr` as a service of the daemon. */
export class FleetHttp implements Service {
  readonly name = 'fleet';
  #server: Server<unknown> | null = null;

  constructor(private readonly addr: string, private readonly log: (msg: string) => void) {}

  async start(): Promise<void> {
    this.#server = startFleetHttp(this.addr, this.log);
  }

  async stop(): Promise<void> {
    void this.#server?.stop(true);
    this.#server = null;
  }
}
