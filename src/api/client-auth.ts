/**
 * Who is calling, as the TCP admin API's mutual TLS established it (`app.fetch(req, { client })`).
 * A request without a client came through the unix socket (mode 0600: whoever can open it owns
 * the host anyway) and may do everything. A read-only bundle may read (GET, HEAD) and nothing else,
 * and no bundle but an admin's sees the join tokens.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { ShoalError } from '../lib/errors.ts';
import type { ClientRole } from '../manager/ca/client-cert.ts';
import { stripVersion } from './middleware.ts';

export interface ApiClient {
  name: string;
  role: ClientRole;
  serial: string;
}

/** The Hono env the TCP server passes; the unix socket passes none. */
export interface ApiEnv {
  client?: ApiClient;
}

export class ForbiddenError extends ShoalError {
  override readonly status = 403;
}

export function clientOf(c: Context): ApiClient | undefined {
  return (c.env as ApiEnv | undefined)?.client;
}

export function isAdmin(c: Context): boolean {
  const client = clientOf(c);
  return !client || client.role === 'admin';
}

const READS = new Set(['GET', 'HEAD']);

export const readOnlyGuard: MiddlewareHandler = async (c, next) => {
  const client = clientOf(c);
  if (client && client.role !== 'admin' && !READS.has(c.req.method)) {
    throw new ForbiddenError(`the client bundle of "${client.name}" has the read-only role: ${c.req.method} ${stripVersion(c.req.raw)} needs an admin bundle`);
  }
  await next();
};
