/**
 * Every shoal protocol on the libp2p listener, with the roles whose certificates may open it. The
 * table is shared by both ends: the listener refuses other roles, the dialer fails early with a
 * clear error instead of being reset.
 */
import type { NodeRole } from '../types/objects.ts';

export interface ProtocolSpec {
  id: string;
  roles: readonly NodeRole[];
}

export const PROTOCOLS = {
  /** Certificate exchange; the one protocol open before authentication (besides join). */
  auth: { id: '/shoal/auth/1', roles: ['manager', 'worker'] },
  /** A joiner with a token asks a manager for the root CA and a certificate; open to anyone. */
  join: { id: '/shoal/join/1', roles: ['manager', 'worker'] },
  raft: { id: '/shoal/raft/1', roles: ['manager'] },
  /** An authenticated node asks a manager for a fresh certificate for its own key. */
  renew: { id: '/shoal/ca/renew/1', roles: ['manager', 'worker'] },
  /** An authenticated node asks a manager for a TLS server certificate for its --metrics-addr listener. */
  serverCert: { id: '/shoal/ca/server-cert/1', roles: ['manager', 'worker'] },
  dispatcher: { id: '/shoal/dispatcher/1', roles: ['manager', 'worker'] },
  /** A manager hands a node a new executable, then has it swapped in (or the previous one back) and restarted. */
  upgrade: { id: '/shoal/upgrade/1', roles: ['manager'] },
} as const satisfies Record<string, ProtocolSpec>;
