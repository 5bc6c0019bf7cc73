/**
 * Join tokens: `SHOAL-1-<digest of the root CA>-<secret>`. The digest lets a joiner check the root CA
 * a manager offers it before trusting anything; the secret says which role the holder may join as.
 * Workers and managers have separate secrets; rotating one makes the old token stop working.
 */
import { InvalidArgumentError } from '../../lib/errors.ts';
import type { NodeRole } from '../../types/objects.ts';
import { bytesEqual, toBase36 } from './x509.ts';

const PREFIX = 'SHOAL';
const FORMAT_VERSION = '1';
const DIGEST_CHARS = 50;
const SECRET_CHARS = 25;
const TOKEN_PATTERN = /^SHOAL-1-([0-9a-z]{50})-([0-9a-z]{25})$/;

export class JoinTokenError extends InvalidArgumentError {}

export interface ParsedJoinToken {
  /** Base-36 SHA-256 of the root CA certificate (see `certDigest`). */
  digest: string;
  secret: string;
}

export function formatJoinToken(digest: string, secret: string): string {
  return `${PREFIX}-${FORMAT_VERSION}-${digest}-${secret}`;
}

export function parseJoinToken(token: string): ParsedJoinToken {
  const t = token.trim();
  const m = TOKEN_PATTERN.exec(t);
  if (!m) {
    const hint = t.startsWith(`${PREFIX}-`) && !t.startsWith(`${PREFIX}-${FORMAT_VERSION}-`)
      ? 'it is of another token format version than this shoal understands'
      : `expected ${PREFIX}-${FORMAT_VERSION}-<${DIGEST_CHARS} characters>-<${SECRET_CHARS} characters>`;
    throw new JoinTokenError(`the join token "${t.slice(0, 12)}…" is not a shoal join token (${hint}): copy it again from "shoal cluster join-token worker|manager" on a manager`);
  }
  return { digest: m[1]!, secret: m[2]! };
}

/** A new random secret: 128 bits in 25 base-36 characters. */
export function newTokenSecret(): string {
  return toBase36(crypto.getRandomValues(new Uint8Array(16)), SECRET_CHARS);
}

/** The cluster's current join secrets. Kept in the cluster object of the store once wired. */
export class JoinTokens {
  constructor(
    readonly digest: string,
    private secrets: Record<NodeRole, string> = { worker: newTokenSecret(), manager: newTokenSecret() },
  ) {}

  token(role: NodeRole): string {
    return formatJoinToken(this.digest, this.secrets[role]);
  }

  /** A new secret for `role`; tokens with the old one stop working at once. Returns the new token. */
  rotate(role: NodeRole): string {
    this.secrets[role] = newTokenSecret();
    return this.token(role);
  }

  /** The role a presented secret admits, or null. Compares in constant time. */
  roleFor(secret: string): NodeRole | null {
    const given = new TextEncoder().encode(secret);
    let found: NodeRole | null = null;
    for (const role of ['worker', 'manager'] as const) {
      if (bytesEqual(given, new TextEncoder().encode(this.secrets[role]))) found = role;
    }
    return found;
  }

  toJSON(): { digest: string; worker: string; manager: string } {
    return { digest: this.digest, worker: this.secrets.worker, manager: this.secrets.manager };
  }
}
