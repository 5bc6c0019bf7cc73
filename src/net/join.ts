/**
 * `/shoal/join/1`: a host with a join token and no certificate asks a manager for one. The one
 * protocol served to unauthenticated peers (managers only), one request per stream, bounded frames.
 *
 * The joiner trusts nothing it is offered until it checks: the root CA must have the digest in the
 * token; the manager's certificate must chain to that root and carry the key the manager proved on
 * the transport; the issued certificate must chain to that root and carry the joiner's own key.
 */
import type { Connection, Stream } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import { ShoalError, errorMessage } from '../lib/errors.ts';
import { type FrameSchema, is } from '../lib/frames.ts';
import { FrameChannel } from '../manager/dispatcher/conn.ts';
import { type Admission, ClusterTrust, type JoinRequest, type NodeIdentity, admit, parseJoinToken, verifyNodeCert } from '../manager/ca/index.ts';
import { nextMessage } from './auth.ts';
import type { NetNode } from './node.ts';
import { PROTOCOLS } from './protocols.ts';
import { VERSION } from '../lib/version.ts';
import { StreamConn } from './stream-conn.ts';

/** Joining failed; the message says which check failed and what to do. */
export class JoinError extends ShoalError {
  override readonly status = 403;
}

const PEM_MAX = 12 * 1024;
/** More managers than any cluster runs (Raft with 7 is already slow); bounds the frame. */
const MAX_MANAGERS = 64;

interface JoinMessages {
  /** `addr`: where the joiner listens for other nodes (its --advertise-addr), recorded for raft and the node list. */
  request: { digest: string; secret: string; addr?: string; shoal?: string };
  /**
   * `managers`: every manager's IP:PORT, leader first (optional: an older manager sends none). A
   * follower refuses a worker's session, so a worker that knew only the follower it joined through
   * never found the leader.
   */
  admitted: { clusterId: string; rootCert: string; managerCert: string; cert: string; managers?: string[] };
  refuse: { reason: string };
}

const JOIN_SCHEMA: FrameSchema<JoinMessages> = {
  request: { version: 1, maxBytes: 512, check: is.shape({ digest: is.string(64), secret: is.string(64), addr: is.optional(is.string(256)), shoal: is.optional(is.string(64)) }) },
  admitted: {
    version: 1, maxBytes: 4 * PEM_MAX + MAX_MANAGERS * 64,
    check: is.shape({ clusterId: is.string(64), rootCert: is.string(PEM_MAX), managerCert: is.string(PEM_MAX), cert: is.string(PEM_MAX), managers: is.optional(is.array(is.string(256), MAX_MANAGERS)) }),
  },
  refuse: { version: 1, maxBytes: 4096, check: is.shape({ reason: is.string(2048) }) },
};

export type JoinAnswer = JoinMessages['admitted'];

/** How a manager answers: admit the joiner and describe itself. */
export function managerAnswer(admission: () => Admission & { trustPem: string }, self: () => NodeIdentity): (req: JoinRequest) => Promise<JoinAnswer> {
  return async (req) => {
    const a = admission();
    const issued = await admit(a, req);
    return { clusterId: a.clusterId, rootCert: a.trustPem, managerCert: self().certPem, cert: issued.certPem };
  };
}

export interface ServeJoinOptions {
  answer: (req: JoinRequest) => Promise<JoinAnswer>;
  timeoutMs?: number;
  onRefused?: (e: { peerId: string; reason: string }) => void;
}

/** Serve join requests on `node` (managers only). Returns a function that stops serving. */
export async function serveJoin(node: NetNode, opts: ServeJoinOptions): Promise<() => Promise<void>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  await node.handle(PROTOCOLS.join.id, (stream: Stream, connection: Connection) => {
    void answerOne(stream, connection, opts, timeoutMs);
  }, { maxInboundStreams: 1 });
  return () => node.unhandle(PROTOCOLS.join.id);
}

async function answerOne(stream: Stream, connection: Connection, opts: ServeJoinOptions, timeoutMs: number): Promise<void> {
  const ch = new FrameChannel(new StreamConn(stream, connection), JOIN_SCHEMA);
  try {
    const m = await nextMessage(ch, timeoutMs, `join request of peer ${connection.remotePeer}`);
    if (m.t !== 'request') throw new JoinError(`expected a join request, got "${m.t}"`);
    const key = connection.remotePeer.publicKey;
    if (!key || key.type !== 'Ed25519') throw new JoinError('a joining node must use an Ed25519 libp2p identity');
    ch.send({ t: 'admitted', b: await opts.answer({ digest: m.b.digest, secret: m.b.secret, publicKey: key.raw, ...(m.b.addr ? { advertiseAddr: m.b.addr } : {}), ...(m.b.shoal ? { version: m.b.shoal } : {}) }) });
  } catch (err) {
    const reason = errorMessage(err).slice(0, 2048);
    opts.onRefused?.({ peerId: connection.remotePeer.toString(), reason });
    ch.send({ t: 'refuse', b: { reason } });
  }
  ch.close('answered');
}

export interface Joined {
  clusterId: string;
  trust: ClusterTrust;
  /** This node's new certificate and identity. */
  identity: NodeIdentity;
  /** The manager that admitted us, as its certificate says. */
  manager: NodeIdentity;
  /** Every manager's IP:PORT as the admitting manager knew them, leader first (may be empty). */
  managers: string[];
}

/** Ask the manager at `addr` to admit this node with `token`. Throws JoinError saying what failed. */
export async function requestJoin(node: NetNode, addr: Multiaddr, token: string, opts: { timeoutMs?: number; now?: number; advertiseAddr?: string } = {}): Promise<Joined> {
  const { digest, secret } = parseJoinToken(token);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const where = `the manager at ${addr.toString()}`;
  let stream: Stream;
  let connection: Connection;
  try {
    connection = await node.dial(addr, { signal: AbortSignal.timeout(timeoutMs) });
    stream = await connection.newStream(PROTOCOLS.join.id, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new JoinError(`cannot reach ${where} to join (${errorMessage(err)}): check the address and that the host is a manager`);
  }
  const ch = new FrameChannel(new StreamConn(stream, connection), JOIN_SCHEMA);
  const reply = nextMessage(ch, timeoutMs, `joining through ${where}`);
  // `shoal`: the joiner's version, for the manager's version-skew check (an older manager ignores it).
  ch.send({ t: 'request', b: { digest, secret, shoal: VERSION, ...(opts.advertiseAddr ? { addr: opts.advertiseAddr } : {}) } });
  const m = await reply.catch((err: unknown) => {
    throw new JoinError(`${where} did not answer the join request (${errorMessage(err)})`);
  });
  ch.close('done');
  if (m.t === 'refuse') throw new JoinError(`${where} refused to admit this node: ${m.b.reason}`);
  if (m.t !== 'admitted') throw new JoinError(`${where} answered the join request with "${m.t}"`);

  let trust: ClusterTrust;
  try {
    trust = await ClusterTrust.fromPem(m.b.rootCert, `the root CA offered by ${where}`);
  } catch (err) {
    throw new JoinError(errorMessage(err));
  }
  if (trust.digest !== digest) {
    throw new JoinError(
      `${where} offered a root CA with digest ${trust.digest}, but the token expects ${digest}: the token belongs to another cluster, ` +
        'or something between this host and the manager is not the manager. Check the address and the token; nothing was trusted',
    );
  }
  const clusterId = m.b.clusterId;
  const now = opts.now ?? Date.now();
  const managerKey = connection.remotePeer.publicKey;
  const ownKey = node.peerId.publicKey;
  if (managerKey?.type !== 'Ed25519' || ownKey?.type !== 'Ed25519') throw new JoinError('both ends of a join must use Ed25519 libp2p identities');
  let manager: NodeIdentity;
  try {
    manager = await verifyNodeCert(m.b.managerCert, {
      trust, clusterId, roles: ['manager'], now, peerPublicKey: managerKey.raw,
      what: `the certificate of ${where}`,
    });
  } catch (err) {
    throw new JoinError(`${errorMessage(err)}; refusing to join through it`);
  }
  let identity: NodeIdentity;
  try {
    identity = await verifyNodeCert(m.b.cert, {
      trust, clusterId, now, peerPublicKey: ownKey.raw, what: `the certificate issued by ${where}`,
    });
  } catch (err) {
    throw new JoinError(`${errorMessage(err)}; refusing it`);
  }
  return { clusterId, trust, identity, manager, managers: m.b.managers ?? [] };
}
