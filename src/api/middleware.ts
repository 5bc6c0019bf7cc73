/**
 * Cross-cutting pieces of the admin API: errors as `{message}` JSON with the error's status, the
 * `/v1.xx/` prefix, the body size bound, JSON bodies that never crash a route.
 */
import type { Context, ErrorHandler, MiddlewareHandler } from 'hono';
import type { ApiDeps } from './deps.ts';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { InvalidArgumentError, ShoalError, UnavailableError } from '../lib/errors.ts';
import type { MemoryStore } from '../store/index.ts';
import type { Cluster } from '../types/index.ts';

/** Request bodies larger than this are refused with 413 (a service spec is a few KiB). */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

const VERSION_PREFIX = /^\/v\d+(?:\.\d+)?(?=\/)/;

/** Route on the path without Docker's `/v1.47` prefix, so `/v1.47/services` is `/services`. */
export function stripVersion(req: Request): string {
  const url = req.url;
  const start = url.indexOf('/', url.indexOf('://') + 3);
  if (start < 0) return '/';
  const q = url.indexOf('?', start);
  const path = decodeURI(q < 0 ? url.slice(start) : url.slice(start, q));
  return path.replace(VERSION_PREFIX, '') || '/';
}

export const limitBody = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: (c) => c.json({ message: `request body too large: the limit is ${MAX_BODY_BYTES / 1024 / 1024} MiB` }, 413),
});

export function statusOf(err: unknown): number {
  if (err instanceof ShoalError) return err.status;
  if (err instanceof HTTPException) return err.status;
  const s = (err as { status?: unknown } | null)?.status;
  return typeof s === 'number' && s >= 400 && s < 600 ? s : 500;
}

export const onError: ErrorHandler = (err, c) => {
  const status = statusOf(err);
  const message = err instanceof Error && err.message ? err.message : 'internal error';
  // A client that hung up (its timeout, a reset) aborts the request's signal: the route's wait ends
  // with an AbortError nobody will read. Routine under load, not a fault of the daemon.
  const clientGone = c.req.raw.signal.aborted && (err as { name?: string } | null)?.name === 'AbortError';
  if (status >= 500 && !(err instanceof ShoalError) && !clientGone) console.error('api: unexpected error:', err);
  return c.json({ message }, status as 500);
};

/** The body as JSON, or a 400 saying why not. */
export async function readJson(c: Context, optional = false): Promise<unknown> {
  let text: string;
  try {
    text = await c.req.text();
  } catch (e) {
    if (e instanceof HTTPException) throw e;
    throw new InvalidArgumentError(`could not read the request body: ${(e as Error).message}`);
  }
  if (text.trim() === '') {
    if (optional) return {};
    throw new InvalidArgumentError('request body is empty: expected a JSON object');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new InvalidArgumentError(`malformed JSON body: ${(e as Error).message}`);
  }
  const depth = jsonDepth(value, MAX_JSON_DEPTH);
  if (depth > MAX_JSON_DEPTH) throw new InvalidArgumentError(`request body nested deeper than ${MAX_JSON_DEPTH} levels`);
  return value;
}

/** Bodies nest no deeper than this: loose fields (ContainerSpec's) are kept, encoded, compared recursively. */
export const MAX_JSON_DEPTH = 64;

/** Depth of a parsed JSON value, iteratively (a deep one must not overflow the stack); stops past `limit`. */
export function jsonDepth(value: unknown, limit: number): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d > max) max = d;
    if (max > limit) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (child !== null && typeof child === 'object') stack.push([child, d + 1]);
  }
  return max;
}

export const NOT_A_MANAGER = 'This node is not a swarm manager. Use "shoal cluster init" to make this host a cluster of its own, then try again.';

/** The cluster, or 503 when this host is not in one yet. */
export function requireCluster(store: MemoryStore): Cluster {
  const cluster = store.list('clusters')[0];
  if (!cluster) throw new UnavailableError(NOT_A_MANAGER);
  return cluster;
}

/** `?version=N` of an update: a non-negative integer, required. */
export function versionParam(c: Context): number {
  const raw = c.req.query('version');
  if (raw === undefined || raw === '') throw new InvalidArgumentError('missing query parameter "version": pass the Version.Index you read');
  if (!/^\d+$/.test(raw)) throw new InvalidArgumentError(`invalid query parameter version="${raw}": expected a non-negative integer`);
  return Number(raw);
}

/** Boolean query parameters as Docker sends them: 1/true/0/false. */
export function boolParam(c: Context, name: string): boolean | undefined {
  const raw = c.req.query(name);
  if (raw === undefined) return undefined;
  if (raw === '' || raw === '1' || raw === 'true' || raw === 'True') return true;
  if (raw === '0' || raw === 'false' || raw === 'False') return false;
  throw new InvalidArgumentError(`invalid query parameter ${name}="${raw}": expected 1, 0, true or false`);
}

/** What a worker answers to cluster-wide requests (everything but the system routes and joining). */
export class WorkerNodeError extends UnavailableError {
  override readonly name = 'WorkerNodeError';
  constructor(managers: string[]) {
    super(
      'This node is a worker: cluster-wide requests go to a manager' +
        (managers.length ? ` (the managers listen at ${managers.join(', ')}; run shoal on one of them, or point -H at its API)` : ' (no manager is known yet)') + '.',
    );
  }
}

export function workerRefusal(deps: ApiDeps, localPaths: string[]): MiddlewareHandler {
  return async (c, next) => {
    const managers = localPaths.includes(stripVersion(c.req.raw)) ? null : deps.managersIfWorker?.();
    if (managers) throw new WorkerNodeError(managers);
    await next();
  };
}
