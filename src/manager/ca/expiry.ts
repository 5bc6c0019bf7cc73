/**
 * The lifetime of node certificates: `Cluster.Spec.CAConfig.NodeCertExpiry` (nanoseconds, Docker's
 * field). Docker's minimum is one hour; `SHOAL_TEST_MIN_CERT_EXPIRY` (a duration such as `1s`, read
 * by the daemon) lowers it for tests that watch renewals happen, and for nothing else.
 * No imports: the API checks values with it without loading x509.
 */
export const NS_PER_MS = 1e6;
export const DEFAULT_NODE_CERT_EXPIRY_NS = 90 * 24 * 3600e9;
export const MIN_NODE_CERT_EXPIRY_NS = 3600e9;
/** Far beyond any sane setting, well within the root CA's 20 years. */
export const MAX_NODE_CERT_EXPIRY_NS = 10 * 365 * 24 * 3600e9;
export const TEST_MIN_ENV = 'SHOAL_TEST_MIN_CERT_EXPIRY';

const UNIT_NS: Record<string, number> = { ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** The smallest lifetime accepted: an hour, unless the test-only environment variable says less. */
export function minNodeCertExpiryNs(env: Record<string, string | undefined> = process.env): number {
  const raw = env[TEST_MIN_ENV]?.trim();
  const m = raw ? /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(raw) : null;
  if (!m) return MIN_NODE_CERT_EXPIRY_NS;
  return Math.max(1e9, Math.min(MIN_NODE_CERT_EXPIRY_NS, Number(m[1]) * UNIT_NS[m[2]!]!));
}

/** Human form of a duration in ns, for messages: `1h`, `20s`, `90d`. */
export function formatNs(ns: number): string {
  const s = ns / 1e9;
  if (s % 86400 === 0) return `${s / 86400}d`;
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}

/** Why `ns` is not a lifetime the cluster may give node certificates, or null when it is. */
export function nodeCertExpiryProblem(ns: unknown, env?: Record<string, string | undefined>): string | null {
  const min = minNodeCertExpiryNs(env);
  if (typeof ns !== 'number' || !Number.isFinite(ns) || !Number.isInteger(ns)) return 'expected a duration in nanoseconds';
  if (ns < min) return `${formatNs(ns)} is too short: node certificates must live at least ${formatNs(min)}${min < MIN_NODE_CERT_EXPIRY_NS ? ` (lowered by ${TEST_MIN_ENV}, for tests only)` : ''}`;
  if (ns > MAX_NODE_CERT_EXPIRY_NS) return `${formatNs(ns)} is too long: at most 10 years`;
  return null;
}

/** The lifetime to issue with, in ms, when `ns` is an acceptable one (else the default applies). */
export function nodeCertLifetimeMs(ns: unknown, env?: Record<string, string | undefined>): number | undefined {
  return nodeCertExpiryProblem(ns, env) === null ? Math.round((ns as number) / NS_PER_MS) : undefined;
}

/**
 * How long before its making a certificate starts (clock skew between hosts): 5 minutes, or a tenth
 * of a short lifetime, so that renewal at 50–80 % of the validity stays after the issuing.
 */
export function backdateMs(lifetimeMs: number, maxMs: number): number {
  return Math.min(maxMs, Math.floor(lifetimeMs / 10));
}
