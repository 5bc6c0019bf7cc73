/**
 * The dispatcher session over libp2p: managers serve `/shoal/dispatcher/1` to authenticated nodes and
 * hand each stream to the dispatcher bound to the node id of its certificate; workers get a `connect`
 * function for their session client that tries the managers it knows in turn.
 */
import type { PeerId } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import { UnavailableError, errorMessage } from '../lib/errors.ts';
import type { Conn } from '../manager/dispatcher/conn.ts';
import type { AuthGuard } from './auth.ts';
import { PROTOCOLS } from './protocols.ts';
import { StreamConn } from './stream-conn.ts';

export interface SessionAcceptor {
  accept(conn: Conn, opts: { nodeId?: string }): void;
}

export async function serveDispatcher(guard: AuthGuard, dispatcher: SessionAcceptor): Promise<void> {
  await guard.handle(PROTOCOLS.dispatcher, ({ stream, connection, peer }) => {
    dispatcher.accept(new StreamConn(stream, connection), { nodeId: peer.nodeId });
  });
}

/**
 * A session client's `connect`: the first manager (in the given order) that answers. `report`
 * learns which one did (its index), or null when none did.
 */
export function dispatcherConnector(
  guard: AuthGuard,
  managers: () => (PeerId | Multiaddr)[],
  report?: (answered: number | null) => void,
): (signal: AbortSignal) => Promise<Conn> {
  return async (signal) => {
    const targets = managers();
    const failures: string[] = [];
    for (const [i, target] of targets.entries()) {
      if (signal.aborted) break;
      try {
        const { stream, connection, peer } = await guard.open(target, PROTOCOLS.dispatcher, { signal });
        if (peer.role !== 'manager') {
          stream.abort(new Error('not a manager'));
          throw new Error(`node ${peer.nodeId} is a ${peer.role}, not a manager`);
        }
        report?.(i);
        return new StreamConn(stream, connection);
      } catch (err) {
        failures.push(`${target.toString()}: ${errorMessage(err)}`);
      }
    }
    if (!signal.aborted) report?.(null);
    throw new UnavailableError(
      targets.length === 0
        ? 'no manager address is known: join the cluster first'
        : `no manager answered (${failures.join('; ').slice(0, 1500)})`,
    );
  };
}
