/**
 * Who signs node certificates: this manager with the root's key (`localSigner`), or an external CA
 * that holds it (src/daemon/external-ca.ts, cfssl). Either way the certificate binds what the
 * manager decided (node id, role, cluster) to the key the node proved on the transport.
 */
import type { NodeRole } from '../../types/objects.ts';
import { type NodeIdentity, issueNodeCert } from './node-cert.ts';
import type { RootCA } from './root.ts';
import type { x509 } from './x509.ts';

export interface SignRequest {
  nodeId: string;
  role: NodeRole;
  clusterId: string;
  /** The node's raw Ed25519 key (its libp2p identity), proved on the transport. */
  publicKey: Uint8Array;
  lifetimeMs?: number;
  now?: number;
}

export interface NodeSigner {
  /** The CA certificates are issued under (its subject and key are the issuer's). */
  readonly issuer: x509.X509Certificate;
  issue(req: SignRequest): Promise<NodeIdentity>;
}

/** Sign with the root's key held here; `intermediatePem` travels with every certificate (a rotation's bridge). */
export function localSigner(ca: RootCA, intermediatePem?: string): NodeSigner {
  return {
    issuer: ca.certificate,
    issue: (req) => issueNodeCert(ca, { ...req, ...(intermediatePem ? { intermediatePem } : {}) }),
  };
}
