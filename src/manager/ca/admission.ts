/**
 * What a manager does with a join request: check the token against this cluster's root and current
 * secrets, then issue a certificate for the key the joiner proved on the transport. The refusals are
 * sent back to the joiner, so they say what to do without revealing anything a token holder lacks.
 */
import { ShoalError } from '../../lib/errors.ts';
import { newId } from '../../lib/ids.ts';
import type { NodeRole } from '../../types/objects.ts';
import type { JoinTokens } from './join-token.ts';
import type { NodeIdentity } from './node-cert.ts';
import type { NodeSigner } from './signer.ts';

export class JoinRefusedError extends ShoalError {
  override readonly status = 403;
}

export interface JoinRequest {
  /** The root CA digest from the joiner's token. */
  digest: string;
  secret: string;
  /** The raw Ed25519 key the joiner proved on the transport; the certificate is issued for it. */
  publicKey: Uint8Array;
  /** Where the joiner says it listens (IP:PORT), as it asked; not verified here. */
  advertiseAddr?: string;
  /** The joiner's shoal version, when it says (checked against the managers': daemon/upgrade/skew.ts). */
  version?: string;
}

export interface Admission {
  signer: NodeSigner;
  /** The cluster's current root digest (the one in its tokens). */
  digest: string;
  clusterId: string;
  tokens: JoinTokens;
  /** The id for a new node; `newId()` unless a test or a re-join chooses. */
  nodeId?: () => string;
  now?: () => number;
  lifetimeMs?: number;
}

export async function admit(a: Admission, req: JoinRequest): Promise<NodeIdentity & { role: NodeRole }> {
  if (req.digest !== a.digest) {
    throw new JoinRefusedError('the token is for a cluster with another root CA than this one: use a token from "shoal cluster join-token" on a manager of the cluster you mean to join');
  }
  const role = a.tokens.roleFor(req.secret);
  if (!role) {
    throw new JoinRefusedError('the token is not valid for this cluster any more (it may have been rotated): get the current one with "shoal cluster join-token worker|manager" on a manager');
  }
  const issued = await a.signer.issue({
    nodeId: (a.nodeId ?? newId)(), role, clusterId: a.clusterId, publicKey: req.publicKey,
    now: a.now?.(), lifetimeMs: a.lifetimeMs,
  });
  return { ...issued, role };
}
