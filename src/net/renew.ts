/**
 * `/shoal/ca/renew/1`: an authenticated node asks a manager for a fresh certificate for the key it is
 * connected with. The manager decides the node id (the one authenticated) and the role (the one the
 * cluster now holds for it, so promotion and demotion take effect through renewal). The node checks
 * the new certificate before using it, then presents it to its peers (`AuthGuard.reauthenticate`).
 */
import type { PeerId } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import { ShoalError, errorMessage } from '../lib/errors.ts';
import { type FrameSchema, is } from '../lib/frames.ts';
import { FrameChannel } from '../manager/dispatcher/conn.ts';
import { ClusterTrust, type NodeIdentity, verifyNodeCert } from '../manager/ca/index.ts';
import { type AuthGuard, type LocalCredentials, nextMessage } from './auth.ts';
import { PROTOCOLS } from './protocols.ts';
import { StreamConn } from './stream-conn.ts';

export class RenewalError extends ShoalError {
  override readonly status = 503;
}

interface RenewMessages {
  renew: Record<string, never>;
  /** `roots`: the roots the node is to trust from now on (PEM; two during a root rotation). */
  issued: { cert: string; roots?: string };
  refuse: { reason: string };
}

const RENEW_SCHEMA: FrameSchema<RenewMessages> = {
  renew: { version: 1, maxBytes: 64, check: is.object() },
  issued: { version: 1, maxBytes: 32 * 1024, check: is.shape({ cert: is.string(12 * 1024), roots: is.optional(is.string(12 * 1024)) }) },
  refuse: { version: 1, maxBytes: 4096, check: is.shape({ reason: is.string(2048) }) },
};

/**
 * Serve renewals (managers). `issue` gets the authenticated peer and the raw key it proved, and
 * returns the new certificate; it throws to refuse (e.g. the node was removed meanwhile).
 */
export async function serveRenewal(guard: AuthGuard, issue: (peer: NodeIdentity, publicKey: Uint8Array) => Promise<{ identity: NodeIdentity; trustPem?: string }>, timeoutMs = 10_000): Promise<void> {
  await guard.handle(PROTOCOLS.renew, async ({ stream, connection, peer }) => {
    const ch = new FrameChannel(new StreamConn(stream, connection), RENEW_SCHEMA);
    try {
      const m = await nextMessage(ch, timeoutMs, `renewal request of node ${peer.nodeId}`);
      if (m.t !== 'renew') throw new RenewalError(`expected a renewal request, got "${m.t}"`);
      const key = connection.remotePeer.publicKey;
      if (!key || key.type !== 'Ed25519') throw new RenewalError('a node must use an Ed25519 libp2p identity');
      const issued = await issue(peer, key.raw);
      ch.send({ t: 'issued', b: { cert: issued.identity.certPem, ...(issued.trustPem ? { roots: issued.trustPem } : {}) } });
    } catch (err) {
      ch.send({ t: 'refuse', b: { reason: errorMessage(err).slice(0, 2048) } });
    }
    ch.close('answered');
  });
}

/**
 * Ask a manager for a new certificate and check it: our key, our node id, this cluster's roots.
 * New roots are taken only from an authenticated manager, only when the new certificate verifies
 * against both the roots trusted now and the new ones, and only when they share a root with those
 * trusted now (a rotation adds a root, then drops the old: never a wholesale swap).
 */
export async function requestRenewal(guard: AuthGuard, manager: PeerId | Multiaddr, creds: LocalCredentials, opts: { timeoutMs?: number; now?: number } = {}): Promise<{ identity: NodeIdentity; trust: ClusterTrust }> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const { stream, connection, peer } = await guard.open(manager, PROTOCOLS.renew, { signal: AbortSignal.timeout(timeoutMs) });
  if (peer.role !== 'manager') {
    stream.abort(new RenewalError('not a manager'));
    throw new RenewalError(`node ${peer.nodeId} is a ${peer.role}; certificates are renewed by managers`);
  }
  const ch = new FrameChannel(new StreamConn(stream, connection), RENEW_SCHEMA);
  const reply = nextMessage(ch, timeoutMs, `renewal through manager ${peer.nodeId}`);
  ch.send({ t: 'renew', b: {} });
  const m = await reply.catch((err: unknown) => {
    throw new RenewalError(errorMessage(err));
  });
  ch.close('done');
  if (m.t === 'refuse') throw new RenewalError(`manager ${peer.nodeId} refused to renew this node's certificate: ${m.b.reason}`);
  if (m.t !== 'issued') throw new RenewalError(`manager ${peer.nodeId} answered a renewal with "${m.t}"`);
  const own = guard.node.peerId.publicKey;
  if (own?.type !== 'Ed25519') throw new RenewalError('this node has no Ed25519 identity');
  const id = await verifyNodeCert(m.b.cert, {
    trust: creds.trust, clusterId: creds.clusterId, peerPublicKey: own.raw, now: opts.now,
    what: `the certificate renewed by manager ${peer.nodeId}`,
  }).catch((err: unknown) => {
    throw new RenewalError(`${errorMessage(err)}; keeping the current certificate`);
  });
  if (id.nodeId !== creds.identity.nodeId) {
    throw new RenewalError(`manager ${peer.nodeId} renewed the certificate for node ${id.nodeId}, but this is node ${creds.identity.nodeId}; keeping the current certificate`);
  }
  if (!m.b.roots) return { identity: id, trust: creds.trust };
  const trust = await ClusterTrust.fromPem(m.b.roots, `the roots sent by manager ${peer.nodeId}`).catch((err: unknown) => {
    throw new RenewalError(`${errorMessage(err)}; keeping the current certificate`);
  });
  if (!trust.digests.some((d) => creds.trust.digests.includes(d))) {
    throw new RenewalError(`manager ${peer.nodeId} sent roots (${trust.digests.join(', ')}) that share none with those this node trusts (${creds.trust.digests.join(', ')}): this node missed a whole root rotation; join it again with a current token`);
  }
  await verifyNodeCert(m.b.cert, { trust, clusterId: creds.clusterId, peerPublicKey: own.raw, now: opts.now, what: `the certificate renewed by manager ${peer.nodeId}` }).catch((err: unknown) => {
    throw new RenewalError(`${errorMessage(err)} (against the new roots); keeping the current certificate`);
  });
  return { identity: id, trust };
}
