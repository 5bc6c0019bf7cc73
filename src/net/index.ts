export { createNetNode, PeerDenyList, DEFAULT_LIMITS, type NetNode, type NetNodeOptions, type ConnectionLimits, type Gossip } from './node.ts';
export { loadOrCreateNodeKey, NodeKeyError, NODE_KEY_FILE, type NodeKeyStore } from './identity.ts';
export { PROTOCOLS, type ProtocolSpec } from './protocols.ts';
export { AuthGuard, AuthError, AuthRefusedError, type AuthGuardOptions, type LocalCredentials, type GuardedStream, type GuardedHandler } from './auth.ts';
export { StreamConn } from './stream-conn.ts';
export { serveJoin, requestJoin, managerAnswer, JoinError, type Joined, type JoinAnswer } from './join.ts';
export { serveRenewal, requestRenewal, RenewalError } from './renew.ts';
export { serveDispatcher, dispatcherConnector } from './dispatcher.ts';
export { Libp2pRaftTransport, RAFT_FRAMES, type Libp2pRaftTransportOptions } from './raft-transport.ts';
export { guardTopic, SubscriptionRepair, type TopicGuard, type SubscriptionRepairOptions } from './gossip.ts';
export { HostGossip, type HostGossipOptions, type HostGossipStats } from './host-gossip.ts';
export { HostDirectory, type HostEntry, type HostStatus, type ForwardingEntry, type HostDirectoryOptions } from './host-directory.ts';
export {
  HOSTS_TOPIC, HOST_ANNOUNCEMENT_VERSION, HOST_LIMITS, encodeAnnouncement, decodeAnnouncement,
  type HostAnnouncement, type HostNets, type HostRole, type DropReason,
} from './host-announcement.ts';
