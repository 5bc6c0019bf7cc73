/**
 * The manager's side of a worker's `--metrics-addr` certificate (`/shoal/ca/server-cert/1`,
 * src/net/server-cert.ts): which names it may carry, and the issue from the cluster CA.
 *
 * A worker names what it listens on, but a certificate for any name would let one worker pose as
 * another host, a manager's admin API included, to every client that trusts the cluster CA. So the
 * certificate carries only the names the cluster already records for that node (its session's
 * address, its advertised and mesh addresses, its hostname) and the loopback names every API
 * certificate has, never a name a manager is recorded under; the others are left out and the worker
 * logs which.
 */
import { ConflictError, InvalidArgumentError, NotFoundError, UnavailableError } from '../lib/errors.ts';
import type { NodeIdentity } from '../manager/ca/index.ts';
import type { ServerCertRequest } from '../net/server-cert.ts';
import type { MemoryStore } from '../store/index.ts';
import type { Node } from '../types/index.ts';
import { currentCluster } from './cluster.ts';

const LOOPBACK = ['localhost', '127.0.0.1', '::1'];

const hostOf = (addr: string | undefined) => (addr ? addr.replace(/^\[(.*)\](:\d+)?$/, '$1').replace(/^([^:]+):\d+$/, '$1').toLowerCase() : '');

function namesOf(n: Node): string[] {
  const d = n.Description as { Addr?: unknown; Hostname?: unknown };
  return [n.Status.Addr, n.AdvertiseAddr, typeof d.Addr === 'string' ? d.Addr : undefined, typeof d.Hostname === 'string' ? d.Hostname : undefined]
    .map(hostOf).filter((h) => h !== '' && h !== '0.0.0.0' && h !== '::');
}

/** The requested names the certificate of `node` may carry, and those it may not. */
export function serverNamesFor(node: Node, nodes: Node[], requested: string[]): { allowed: string[]; dropped: string[] } {
  const own = new Set([...LOOPBACK, ...namesOf(node)]);
  const managers = new Set(nodes.filter((n) => n.ID !== node.ID && n.Spec.Role === 'manager').flatMap((n) => [...namesOf(n), hostOf(n.ManagerStatus?.Addr)]));
  const allowed: string[] = [];
  const dropped: string[] = [];
  for (const name of new Set(requested.map((h) => h.toLowerCase()))) (own.has(name) && !managers.has(name) ? allowed : dropped).push(name);
  return { allowed, dropped };
}

/** Issue the certificate of an authenticated node's metrics listener, for the names it may carry. */
export async function issueMetricsServerCert(store: MemoryStore, peer: NodeIdentity, req: ServerCertRequest): Promise<{ certPem: string; hosts: string[] }> {
  const cluster = currentCluster(store);
  if (!cluster?.RootCA) throw new UnavailableError('this manager has not received the cluster state yet; try again shortly');
  if ((cluster.RemovedNodes ?? []).includes(peer.nodeId)) throw new ConflictError(`node ${peer.nodeId} was removed from the cluster`);
  const node = store.get('nodes', peer.nodeId);
  if (!node) throw new NotFoundError(`node ${peer.nodeId} is not a member of this cluster`);
  const { allowed } = serverNamesFor(node, store.list('nodes'), req.hosts);
  if (allowed.length === 0) {
    throw new InvalidArgumentError(`none of the names asked for (${req.hosts.join(', ').slice(0, 512)}) is one the cluster records for node ${peer.nodeId} (${namesOf(node).join(', ') || 'none yet'})`);
  }
  const [{ RootCA }, { issueServerCertFor }, { certLifetimeMs }] = await Promise.all([
    import('../manager/ca/root.ts'), import('../manager/ca/client-cert.ts'), import('./ca-service.ts'),
  ]);
  const ca = await RootCA.fromPem(cluster.RootCA.CACert, cluster.RootCA.CAKey);
  const issued = await issueServerCertFor(ca, { clusterId: cluster.ID, publicKeyPem: req.publicKey, hosts: allowed, lifetimeMs: certLifetimeMs(cluster) });
  return { certPem: issued.certPem, hosts: allowed };
}
