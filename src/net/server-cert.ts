/**
 * `/shoal/ca/server-cert/1`: an authenticated node asks a manager for a TLS server certificate for
 * its `--metrics-addr` listener. A node's own certificate cannot serve there: it names the node's
 * libp2p peer, not the addresses a scraper dials, so no TLS client would accept it for them. The
 * node makes an ECDSA P-256 key and sends only its public key and the names it listens on; the
 * manager decides which of those names the certificate may carry (src/daemon/metrics-cert.ts).
 */
import type { PeerId } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import { ShoalError, errorMessage } from '../lib/errors.ts';
import { type FrameSchema, is } from '../lib/frames.ts';
import { FrameChannel } from '../manager/dispatcher/conn.ts';
import type { NodeIdentity } from '../manager/ca/index.ts';
import { parseCertificate, x509 } from '../manager/ca/x509.ts';
import { type AuthGuard, type LocalCredentials, nextMessage } from './auth.ts';
import { PROTOCOLS } from './protocols.ts';
import { StreamConn } from './stream-conn.ts';

export class ServerCertError extends ShoalError {
  override readonly status = 503;
}

/** Names one request may list: a host's interfaces and its names, with room to spare. */
export const MAX_SERVER_NAMES = 64;

export interface ServerCertRequest {
  /** SubjectPublicKeyInfo PEM, ECDSA P-256. */
  publicKey: string;
  /** What the listener answers on: IP addresses and DNS names. */
  hosts: string[];
}

export interface IssuedServerCert {
  certPem: string;
  /** The names the certificate carries (those of the request the manager could vouch for). */
  hosts: string[];
  notBefore: number;
  notAfter: number;
}

interface ServerCertMessages {
  request: ServerCertRequest;
  issued: { cert: string; hosts: string[] };
  refuse: { reason: string };
}

const SCHEMA: FrameSchema<ServerCertMessages> = {
  request: { version: 1, maxBytes: 32 * 1024, check: is.shape({ publicKey: is.string(1024), hosts: is.array(is.string(253), MAX_SERVER_NAMES) }) },
  issued: { version: 1, maxBytes: 32 * 1024, check: is.shape({ cert: is.string(16 * 1024), hosts: is.array(is.string(253), MAX_SERVER_NAMES) }) },
  refuse: { version: 1, maxBytes: 4096, check: is.shape({ reason: is.string(2048) }) },
};

/** Serve requests (managers). `issue` throws to refuse (an unknown or removed node, no CA yet). */
export async function serveServerCert(guard: AuthGuard, issue: (peer: NodeIdentity, req: ServerCertRequest) => Promise<{ certPem: string; hosts: string[] }>, timeoutMs = 10_000): Promise<void> {
  await guard.handle(PROTOCOLS.serverCert, async ({ stream, connection, peer }) => {
    const ch = new FrameChannel(new StreamConn(stream, connection), SCHEMA);
    try {
      const m = await nextMessage(ch, timeoutMs, `server certificate request of node ${peer.nodeId}`);
      if (m.t !== 'request') throw new ServerCertError(`expected a server certificate request, got "${m.t}"`);
      const issued = await issue(peer, m.b);
      ch.send({ t: 'issued', b: { cert: issued.certPem, hosts: issued.hosts } });
    } catch (err) {
      ch.send({ t: 'refuse', b: { reason: errorMessage(err).slice(0, 2048) } });
    }
    ch.close('answered');
  });
}

/**
 * Ask a manager for a server certificate for `req.publicKey`, and check what comes back: signed by
 * this cluster's root, for that key, a server certificate, valid now.
 */
export async function requestServerCert(guard: AuthGuard, manager: PeerId | Multiaddr, creds: LocalCredentials, req: ServerCertRequest, opts: { timeoutMs?: number; now?: number } = {}): Promise<IssuedServerCert> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const { stream, connection, peer } = await guard.open(manager, PROTOCOLS.serverCert, { signal: AbortSignal.timeout(timeoutMs) });
  if (peer.role !== 'manager') {
    stream.abort(new ServerCertError('not a manager'));
    throw new ServerCertError(`node ${peer.nodeId} is a ${peer.role}; server certificates are issued by managers`);
  }
  const ch = new FrameChannel(new StreamConn(stream, connection), SCHEMA);
  const reply = nextMessage(ch, timeoutMs, `server certificate from manager ${peer.nodeId}`);
  ch.send({ t: 'request', b: req });
  const m = await reply.catch((err: unknown) => {
    throw new ServerCertError(errorMessage(err));
  });
  ch.close('done');
  if (m.t === 'refuse') throw new ServerCertError(`manager ${peer.nodeId} refused a server certificate: ${m.b.reason}`);
  if (m.t !== 'issued') throw new ServerCertError(`manager ${peer.nodeId} answered a server certificate request with "${m.t}"`);
  const what = `the server certificate from manager ${peer.nodeId}`;
  const cert = parseCertificate(m.b.cert, what);
  const root = creds.trust.root;
  const signed = cert.issuer === root.subject && await cert.verify({ publicKey: root.publicKey, signatureOnly: true }, crypto).catch(() => false);
  if (!signed) throw new ServerCertError(`${what} is not signed by this cluster's root CA`);
  if (Buffer.from(cert.publicKey.rawData).toString('base64') !== spkiBase64(req.publicKey)) throw new ServerCertError(`${what} is not for the key this node sent`);
  if (!cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages.includes(x509.ExtendedKeyUsage.serverAuth)) throw new ServerCertError(`${what} is not a TLS server certificate`);
  const now = opts.now ?? Date.now();
  if (now < cert.notBefore.getTime() || now > cert.notAfter.getTime()) throw new ServerCertError(`${what} is valid from ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()}, not now: check the clocks`);
  return { certPem: cert.toString('pem'), hosts: m.b.hosts, notBefore: cert.notBefore.getTime(), notAfter: cert.notAfter.getTime() };
}

function spkiBase64(pem: string): string {
  return pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, '').replace(/\s+/g, '');
}
