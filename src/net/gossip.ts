/**
 * Gossip (node liveness and status, later endpoint tables) over gossipsub, closed to the cluster.
 * gossipsub serves its own protocol handlers, so it is guarded in two places: peer scores (node.ts,
 * `gossipTrust`) keep unauthenticated peers out of publishing, gossip and the mesh, and `guardTopic`
 * validates every message: relayed by an authenticated peer, signed, and from a cluster member.
 */
import { TopicValidatorResult } from '@libp2p/gossipsub';
import type { NetNode } from './node.ts';

export interface TopicGuard {
  /** The peer that handed us the message has authenticated on a connection. */
  isAuthenticated: (peerId: string) => boolean;
  /** The message's origin (possibly several hops away) is a member of the cluster. */
  isMember: (peerId: string) => boolean;
  onRejected?: (e: { from: string; via: string; reason: string }) => void;
}

/** Subscribe to `topic` with a validator that rejects anything not from the cluster. */
export function guardTopic(node: NetNode, topic: string, guard: TopicGuard): void {
  node.services.pubsub.topicValidators.set(topic, (via, msg) => {
    const reject = (reason: string) => {
      guard.onRejected?.({ from: msg.type === 'signed' ? msg.from.toString() : '?', via: via.toString(), reason });
      return TopicValidatorResult.Reject;
    };
    if (!guard.isAuthenticated(via.toString())) return reject('relayed by a peer that has not authenticated');
    if (msg.type !== 'signed') return reject('unsigned message');
    if (!guard.isMember(msg.from.toString())) return reject('signed by a peer that is not a member of the cluster');
    return TopicValidatorResult.Accept;
  });
  node.services.pubsub.subscribe(topic);
}
