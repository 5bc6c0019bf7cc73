/**
 * An external CA that holds the root's key (Docker's `--external-ca protocol=cfssl,url=…`): managers
 * keep only the root certificate and forward every node certificate to a cfssl server's
 * `/api/v1/cfssl/sign`, as swarmkit does. cfssl signs certificate requests, which a node's Ed25519
 * libp2p key cannot make for it here, so the manager asks for a certificate naming the node's peer
 * id (src/manager/ca/node-cert.ts, `peerKeyNamed`) over a throwaway key, with the subject it decided
 * (CN node id, OU role, O cluster), and checks what comes back before handing it out.
 */
import 'reflect-metadata';
import { errorMessage, UnavailableError } from '../lib/errors.ts';
import { ClusterTrust, type NodeIdentity, type NodeSigner, type SignRequest, verifyNodeCert } from '../manager/ca/index.ts';
import { CA_ALGORITHM, x509 } from '../manager/ca/x509.ts';
import { peerIdFromPublicKey } from '@libp2p/peer-id';
import { publicKeyFromRaw } from '@libp2p/crypto/keys';
import type { ExternalCA } from '../types/index.ts';

const SIGN_TIMEOUT_MS = 10_000;
const MAX_ANSWER_BYTES = 64 * 1024;

/** A signer forwarding to the cfssl servers of `cas` that sign for `rootPem` (tried in order). */
export async function externalSigner(rootPem: string, cas: ExternalCA[], intermediatePem?: string): Promise<NodeSigner> {
  const trust = await ClusterTrust.fromPem(rootPem, 'the root CA certificate');
  const servers = cas.filter((c) => c.Protocol === 'cfssl' && (!c.CACert || sameRoot(c.CACert, rootPem)));
  if (servers.length === 0) {
    throw new UnavailableError('the root CA key is held by an external CA, but Spec.CAConfig.ExternalCAs names no cfssl server for this root: add one with "docker swarm update --external-ca protocol=cfssl,url=URL"');
  }
  return {
    issuer: trust.root,
    async issue(req: SignRequest): Promise<NodeIdentity> {
      const peerId = peerIdFromPublicKey(publicKeyFromRaw(req.publicKey)).toString();
      const csr = await throwawayCsr();
      const failures: string[] = [];
      for (const s of servers) {
        try {
          const pem = await cfsslSign(s, {
            certificate_request: csr,
            hosts: [peerId],
            subject: { CN: req.nodeId, names: [{ O: req.clusterId, OU: req.role }] },
          });
          const full = intermediatePem ? `${pem.trim()}\n${intermediatePem.trim()}\n` : pem;
          const id = await verifyNodeCert(full, { trust, clusterId: req.clusterId, peerPublicKey: req.publicKey, what: `the certificate signed by the external CA ${s.URL}` });
          if (id.nodeId !== req.nodeId || id.role !== req.role) throw new UnavailableError(`the external CA ${s.URL} signed for ${id.role} ${id.nodeId}, not for ${req.role} ${req.nodeId}: check its signing profile keeps the subject`);
          return id;
        } catch (err) {
          failures.push(errorMessage(err));
        }
      }
      throw new UnavailableError(`no external CA signed the node certificate: ${failures.join('; ')}`);
    },
  };
}

/** The root certificate a cfssl server signs with (`/api/v1/cfssl/info`), for an init that names only the server. */
export async function cfsslRoot(ca: ExternalCA): Promise<string> {
  const answer = await cfsslCall(ca, 'info', {});
  const cert = (answer as { certificate?: unknown }).certificate;
  if (typeof cert !== 'string' || !cert.includes('BEGIN CERTIFICATE')) throw new UnavailableError(`the external CA ${ca.URL} answered /info without a certificate`);
  return cert;
}

async function cfsslSign(ca: ExternalCA, body: Record<string, unknown>): Promise<string> {
  const answer = await cfsslCall(ca, 'sign', body);
  const cert = (answer as { certificate?: unknown }).certificate;
  if (typeof cert !== 'string' || !cert.includes('BEGIN CERTIFICATE')) throw new UnavailableError(`the external CA ${ca.URL} answered without a certificate`);
  return cert;
}

/** One cfssl API call: `{success, result, errors}` back; the URL is the server's sign endpoint or its base. */
async function cfsslCall(ca: ExternalCA, op: 'sign' | 'info', body: Record<string, unknown>): Promise<unknown> {
  const url = endpoint(ca.URL, op);
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(SIGN_TIMEOUT_MS),
      // TLS to the server: the system's CAs, and the root the server signs for (Docker's CACert).
      ...(url.startsWith('https:') && ca.CACert ? { tls: { ca: ca.CACert } } : {}),
    } as RequestInit);
  } catch (err) {
    throw new UnavailableError(`the external CA ${ca.URL} is unreachable (${errorMessage(err)})`);
  }
  const text = await res.text();
  if (text.length > MAX_ANSWER_BYTES) throw new UnavailableError(`the external CA ${ca.URL} answered ${text.length} bytes; expected a certificate`);
  let json: { success?: unknown; result?: unknown; errors?: { message?: string }[] };
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    throw new UnavailableError(`the external CA ${ca.URL} answered HTTP ${res.status} with no cfssl JSON (is it a cfssl server?)`);
  }
  if (json.success !== true || !json.result || typeof json.result !== 'object') {
    const why = (json.errors ?? []).map((e) => e?.message).filter(Boolean).join('; ') || `HTTP ${res.status}`;
    throw new UnavailableError(`the external CA ${ca.URL} refused: ${why}`);
  }
  return json.result;
}

function endpoint(base: string, op: 'sign' | 'info'): string {
  const u = base.replace(/\/+$/, '');
  if (/\/api\/v1\/cfssl\/sign$/.test(u)) return op === 'sign' ? u : u.replace(/sign$/, 'info');
  return `${u}/api/v1/cfssl/${op}`;
}

function sameRoot(a: string, b: string): boolean {
  const norm = (p: string) => p.replace(/\s+/g, '');
  return norm(a) === norm(b);
}

/** A request over a key made for it and dropped: the certificate names the node by its peer id. */
async function throwawayCsr(): Promise<string> {
  const keys = (await crypto.subtle.generateKey(CA_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=shoal node', keys, signingAlgorithm: CA_ALGORITHM }, crypto);
  return csr.toString('pem');
}
