/** A host in no cluster joins (`--join` at start, POST /swarm/join): admission through a manager, then this host's files. */
import { errorMessage, ShoalError, UnavailableError } from '../lib/errors.ts';
import type { Addrs } from './addrs.ts';
import type { ClusterNet } from './cluster-net.ts';
import type { Joined } from '../net/join.ts';
import { formatHostPort, type Membership, parseHostPort, saveMembership, saveNodeId } from './membership.ts';
import type { Log } from './options.ts';

export interface JoinTarget {
  dataDir: string;
  /** The manager's IP:PORT. */
  join: string;
  token: string;
}

/** Joined: the listener used to ask (already authenticated with the new certificate) and what was written. */
export async function joinCluster(t: JoinTarget, addrs: Addrs, log: Log): Promise<{ net: ClusterNet; membership: Membership; nodeId: string }> {
  const { ClusterNet } = await import('./cluster-net.ts');
  const net = await ClusterNet.start({ dataDir: t.dataDir, ...addrs, isRemoved: () => false, log });
  try {
    const joined = await net.join(t.join, t.token);
    const membership: Membership = {
      ClusterID: joined.clusterId,
      Role: joined.identity.role,
      RootCA: joined.trust.pem,
      Cert: joined.identity.certPem,
      Joined: true,
      Managers: joinedManagers(joined, formatHostPort(parseHostPort('--join', t.join, '127.0.0.1'))),
    };
    saveNodeId(t.dataDir, joined.identity.nodeId);
    saveMembership(t.dataDir, membership);
    await net.authenticate(membership);
    log(`joined cluster ${joined.clusterId} as ${joined.identity.role} ${joined.identity.nodeId} through ${t.join}`);
    return { net, membership, nodeId: joined.identity.nodeId };
  } catch (err) {
    await net.stop();
    if (err instanceof ShoalError) throw err;
    throw new UnavailableError(`joining through ${t.join} failed: ${errorMessage(err)}`);
  }
}

/** The manager joined through first (its NodeID known), then the others the answer named (leader first). */
export function joinedManagers(joined: Pick<Joined, 'manager' | 'managers'>, through: string): Membership['Managers'] {
  return [{ NodeID: joined.manager.nodeId, Addr: through }, ...joined.managers.filter((a) => a !== through).map((Addr) => ({ NodeID: '', Addr }))];
}
