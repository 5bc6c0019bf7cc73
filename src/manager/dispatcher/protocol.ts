/**
 * The dispatcher session protocol, spoken between a worker's agent and a manager's dispatcher
 * (swarmkit's Session/Heartbeat/UpdateTaskStatus/Assignments RPCs, as frames on one stream).
 *
 *   worker → manager  session.register, node.describe, heartbeat, tasks.status, logs.line, logs.end
 *   manager → worker  session.registered, session.error, heartbeat.ack, tasks.ack, assignments,
 *                     endpoints, networks, networks.delta, secrets, revocations, logs.request,
 *                     logs.cancel
 *
 * After `session.registered` the dispatcher sends the worker's full assignment set (possibly split
 * over several `assignments` frames with `full: true`, the last one `last: true`), then only changes.
 * It also sends the cluster's endpoint table (`endpoints`, whole, once after registration and again
 * whenever it changes): what every host's ingress mesh needs to route published ports.
 *
 * A worker that lists `acks.held` in `accepts` lets the dispatcher hold its acks (issue #18): a
 * status frame written is acknowledged in the next `assignments` frame to that worker, or after
 * ACK_HOLD_MS in one `tasks.ack` for all held, or at once once a status frame marked `flush` is
 * written (what a worker about to stop sends, to learn that its last reports were written). With a
 * task a node per service, an ack of its own was a third of the frames of a placement.
 */
import { type FrameSchema, is, MAX_FRAME_BYTES } from '../../lib/frames.ts';
import { type FileKind, isTaskState, MAX_SECRET_BYTES, type NodeDescription, type Task, type TaskStatus } from '../../types/index.ts';
import type { LogLine } from '../../executor/contract.ts';

export interface StatusUpdate { taskId: string; status: TaskStatus }

/** One running task behind a published port: where any host reaches it. */
export interface EndpointBackend {
  /** The node the task runs on (a worker compares it with its own id to prefer local tasks). */
  node: string;
  addr: string;
  port: number;
  healthy: boolean;
  /**
   * A task on an overlay network: its own host reaches it here (its overlay address and target
   * port); other hosts reach `addr:port`, that host's mesh on the published port, which serves such
   * connections from its local tasks only.
   */
  inner?: { addr: string; port: number };
}

/** One published port of a service, with its tasks now. */
export interface EndpointPort {
  service: string;
  port: number;
  protocol: 'tcp' | 'udp';
  target: number;
  /** `ingress`: every host listens; `host`: only hosts that run one of its tasks. */
  mode: 'ingress' | 'host';
  backends: EndpointBackend[];
}

/** An overlay network as every host builds it. */
export interface NetTableNetwork {
  id: string; name: string; subnet: string; gateway: string; vni: number;
  /** No way out of the network (`network create --internal`). */
  internal?: boolean;
}

/** A service's names on the overlay networks: what the embedded DNS answers and the VIP rules route. */
export interface NetTableService {
  id: string;
  name: string;
  mode: 'vip' | 'dnsrr';
  /** One virtual IP per network (no prefix). */
  vips: { net: string; addr: string }[];
  /** The running tasks' addresses on each network (no prefix). */
  tasks: { net: string; addr: string }[];
}

/** What the hosts of overlay networks need from the store, sent whole when it changes. */
export interface NetTable {
  networks: NetTableNetwork[];
  services: NetTableService[];
  /** Each node's libp2p peer id (from its certificate): who signed a gossip announcement. */
  hosts?: { node: string; peer: string }[];
}

export const MAX_NET_NETWORKS = 4096;

/** A client bundle revoked with `shoal ca revoke`: what a worker's `--metrics-addr` listener refuses. */
export interface RevokedClientCert {
  /** Lowercase hex, as the store keeps it and readClientCert reads it. */
  serial: string;
  name: string;
  /** RFC 3339, when it was revoked. */
  at: string;
}

/**
 * Revoked bundles in one `revocations` frame: above the cluster's 1000 unexpired bundles
 * (api/ca.ts), so a list that fits the store fits the frame. A longer one is never cut short (a
 * revocation left out would be accepted): the frame is refused by its encoder, and a worker that
 * has no list serves no metrics over TCP.
 */
export const MAX_REVOCATIONS = 4096;
export const MAX_NET_SERVICES = 65536;
export const MAX_NET_ADDRS = 65536;

export interface SessionMessages {
  /**
   * `accepts`: frame types the worker understands beyond the first protocol (`endpoints`); the
   * dispatcher sends none of those to a worker that does not list them (an older one would close
   * its session on a type it does not know).
   */
  'session.register': { nodeId: string; description: NodeDescription; accepts?: string[] };
  /** The node's description changed since registration (a runtime turned healthy or unhealthy). */
  'node.describe': { sessionId: string; description: NodeDescription };
  'session.registered': { sessionId: string; nodeId: string; heartbeatPeriodMs: number; managers: string[] };
  /**
   * A refusal; the sender closes the connection right after. `leader`: a follower names the leader
   * it knows (IP:PORT; optional, older managers omit it).
   */
  'session.error': { code: SessionErrorCode; message: string; leader?: string };
  heartbeat: { sessionId: string };
  /** `heartbeatPeriodMs` is when to send the next heartbeat (jittered by the dispatcher). */
  /** `role`: the node's Spec.Role now, so a worker learns it was promoted (optional: older managers omit it). */
  /** `ca`: the roots nodes are to trust (src/manager/ca/epoch.ts); a node trusting others renews at once (a root rotation). */
  'heartbeat.ack': { heartbeatPeriodMs: number; role?: 'manager' | 'worker'; ca?: string };
  /**
   * Batched task status changes; `seq` is echoed by `tasks.ack` once they are written. `flush`: ack
   * this one and every held ack as soon as it is written (a worker waiting for its acks, to stop).
   */
  'tasks.status': { sessionId: string; seq: number; updates: StatusUpdate[]; flush?: boolean };
  /** `more`: other frames written (held acks, only to a worker that lists `acks.held`). */
  'tasks.ack': { seq: number; more?: number[] };
  /**
   * `full: true`: these tasks are the whole set (when split, gather until `last`). `full: false`:
   * upserts in `tasks`, ids that left the set in `removed`. `acks`: status frames written since the
   * last ack, riding here instead of in frames of their own (only to a worker that lists `acks.held`).
   */
  assignments: { full: boolean; last: boolean; tasks: Task[]; removed: string[]; acks?: number[] };
  /** The whole endpoint table (published ports and their running tasks), sent when it changes. */
  endpoints: { ports: EndpointPort[] };
  /** The overlay networks, and each service's VIPs and running tasks on them; sent when it changes. */
  networks: NetTable;
  /**
   * The rows of the network table that changed since the last `networks` or `networks.delta`
   * (net-delta.ts), only to a worker that lists `networks.delta` in `accepts`; others get the
   * table whole each time.
   */
  'networks.delta': NetTableDelta;
  /**
   * Secrets and configs the worker's tasks use (swarmkit's secret/config assignments): sent before
   * the assignments that need them, only to a worker that lists `secrets` in `accepts`; `removed`
   * when no unfinished task of the node uses them any more. Data travels nowhere else.
   */
  secrets: { upserts: FilePayload[]; removed: FilePayloadKey[] };
  /**
   * Every client bundle revoked in the Cluster object now (whole, once after registration and again
   * when it changes), only to a worker that lists `revocations` in `accepts`: a worker holds no
   * store, and its `--metrics-addr` listener checks bundles against this list as a manager's
   * listeners check them against the store.
   */
  revocations: { revoked: RevokedClientCert[] };
  'logs.request': { requestId: number; taskId: string; follow?: boolean; since?: number; tail?: number };
  'logs.cancel': { requestId: number };
  'logs.line': { requestId: number; lines: LogLine[] };
  'logs.end': { requestId: number; error?: string };
}

export interface FilePayloadKey { kind: FileKind; id: string }
export interface FilePayload extends FilePayloadKey { name: string; data: Uint8Array }

export type SessionErrorCode = 'unknown-node' | 'bad-request' | 'overloaded' | 'shutting-down';

export const MAX_STATUS_UPDATES_PER_FRAME = 1000;
/** Acks one frame carries at most (a worker has at most 1 000 status frames unacknowledged). */
export const MAX_HELD_ACKS = 1000;
/**
 * Longest a written status frame's ack waits for an `assignments` frame to ride in. About the gap
 * between a service's tasks and the next one's when services are created one after another.
 */
export const ACK_HOLD_MS = 1000;
export const MAX_TASKS_PER_FRAME = 10_000;
export const MAX_LOG_LINES_PER_FRAME = 500;
/** Published ports in one endpoint table, and tasks behind one port (the ingress proxy's own bound). */
export const MAX_ENDPOINT_PORTS = 4096;
export const MAX_ENDPOINT_BACKENDS = 4096;

const KiB = 1024;
const id = is.string(256);
const netNetwork = is.shape({ id, name: is.string(256), subnet: is.string(64), gateway: is.string(64), vni: is.number(), internal: is.optional(is.boolean()) });
const netService = is.shape({
  id, name: is.string(256), mode: is.oneOf(['vip', 'dnsrr'] as const),
  vips: is.array(is.shape({ net: id, addr: is.string(64) }), MAX_NET_NETWORKS),
  tasks: is.array(is.shape({ net: id, addr: is.string(64) }), MAX_NET_ADDRS),
});
const netHost = is.shape({ node: id, peer: is.string(256) });

const taskStatus = is.shape({
  State: (x) => (isTaskState(x) ? null : 'not a task state'),
  Message: is.optional(is.string(16 * KiB)),
  Timestamp: is.optional(is.string(64)),
  Err: is.optional(is.string(16 * KiB)),
});

const task = is.shape({
  ID: id,
  NodeID: is.string(256),
  Spec: is.object(),
  Status: taskStatus,
  DesiredState: (x) => (isTaskState(x) ? null : 'not a task state'),
  Version: is.shape({ Index: is.number() }),
});

const logLine = is.shape({ stream: is.oneOf(['stdout', 'stderr']), time: is.number(), line: is.string(64 * KiB) });

export const SESSION_FRAMES: FrameSchema<SessionMessages> = {
  'session.register': {
    version: 1, maxBytes: 256 * KiB,
    check: is.shape({ nodeId: id, description: is.shape({ Hostname: is.string(256) }), accepts: is.optional(is.array(is.string(64), 64)) }),
  },
  'node.describe': {
    version: 1, maxBytes: 256 * KiB,
    check: is.shape({ sessionId: id, description: is.shape({ Hostname: is.string(256) }) }),
  },
  'session.registered': {
    version: 1, maxBytes: 64 * KiB,
    check: is.shape({ sessionId: id, nodeId: id, heartbeatPeriodMs: is.number(), managers: is.array(is.string(1024), 64) }),
  },
  'session.error': {
    version: 1, maxBytes: 16 * KiB,
    check: is.shape({ code: is.string(64), message: is.string(8 * KiB), leader: is.optional(is.string(256)) }),
  },
  heartbeat: { version: 1, maxBytes: 1 * KiB, check: is.shape({ sessionId: id }) },
  'heartbeat.ack': { version: 1, maxBytes: 1 * KiB, check: is.shape({ heartbeatPeriodMs: is.number(), role: is.optional(is.oneOf(['manager', 'worker'] as const)), ca: is.optional(is.string(128)) }) },
  'tasks.status': {
    version: 1, maxBytes: 2 * 1024 * KiB,
    check: is.shape({ sessionId: id, seq: is.number(), updates: is.array(is.shape({ taskId: id, status: taskStatus }), MAX_STATUS_UPDATES_PER_FRAME), flush: is.optional(is.boolean()) }),
  },
  'tasks.ack': { version: 1, maxBytes: 16 * KiB, check: is.shape({ seq: is.number(), more: is.optional(is.array(is.number(), MAX_HELD_ACKS)) }) },
  assignments: {
    version: 1, maxBytes: MAX_FRAME_BYTES,
    check: is.shape({ full: is.boolean(), last: is.boolean(), tasks: is.array(task, MAX_TASKS_PER_FRAME), removed: is.array(id, MAX_TASKS_PER_FRAME), acks: is.optional(is.array(is.number(), MAX_HELD_ACKS)) }),
  },
  endpoints: {
    version: 1, maxBytes: MAX_FRAME_BYTES,
    check: is.shape({
      ports: is.array(is.shape({
        service: is.string(256), port: is.number(), protocol: is.oneOf(['tcp', 'udp'] as const), target: is.number(),
        mode: is.oneOf(['ingress', 'host'] as const),
        backends: is.array(is.shape({ node: id, addr: is.string(64), port: is.number(), healthy: is.boolean(), inner: is.optional(is.shape({ addr: is.string(64), port: is.number() })) }), MAX_ENDPOINT_BACKENDS),
      }), MAX_ENDPOINT_PORTS),
    }),
  },
  networks: {
    version: 1, maxBytes: MAX_FRAME_BYTES,
    check: is.shape({
      networks: is.array(netNetwork, MAX_NET_NETWORKS),
      services: is.array(netService, MAX_NET_SERVICES),
      hosts: is.optional(is.array(netHost, MAX_NET_SERVICES)),
    }),
  },
  'networks.delta': {
    version: 1, maxBytes: MAX_FRAME_BYTES,
    check: is.shape({
      networks: is.optional(is.array(netNetwork, MAX_NET_NETWORKS)),
      services: is.array(netService, MAX_NET_SERVICES),
      removedServices: is.array(id, MAX_NET_SERVICES),
      hosts: is.array(netHost, MAX_NET_SERVICES),
      removedHosts: is.array(id, MAX_NET_SERVICES),
    }),
  },
  secrets: {
    version: 1, maxBytes: MAX_FRAME_BYTES,
    check: is.shape({
      upserts: is.array(is.shape({ kind: is.oneOf(['secret', 'config'] as const), id, name: is.string(256), data: (x) => (x instanceof Uint8Array && x.length <= MAX_SECRET_BYTES ? null : 'not bytes of at most 500 KiB') }), MAX_TASKS_PER_FRAME),
      removed: is.array(is.shape({ kind: is.oneOf(['secret', 'config'] as const), id }), MAX_TASKS_PER_FRAME),
    }),
  },
  revocations: {
    version: 1, maxBytes: 1024 * KiB,
    check: is.shape({ revoked: is.array(is.shape({ serial: is.string(128), name: is.string(256), at: is.string(64) }), MAX_REVOCATIONS) }),
  },
  'logs.request': {
    version: 1, maxBytes: 4 * KiB,
    check: is.shape({ requestId: is.number(), taskId: id, follow: is.optional(is.boolean()), since: is.optional(is.number()), tail: is.optional(is.number()) }),
  },
  'logs.cancel': { version: 1, maxBytes: 1 * KiB, check: is.shape({ requestId: is.number() }) },
  'logs.line': {
    version: 1, maxBytes: MAX_FRAME_BYTES,
    check: is.shape({ requestId: is.number(), lines: is.array(logLine, MAX_LOG_LINES_PER_FRAME) }),
  },
  'logs.end': { version: 1, maxBytes: 16 * KiB, check: is.shape({ requestId: is.number(), error: is.optional(is.string(8 * KiB)) }) },
};

/**
 * Split items into groups whose encoded size stays under `maxBytes` (with `overhead` for the rest
 * of the frame) and whose count stays under `maxItems`. One item over the bound alone is its own
 * group; the encoder then refuses it, naming the type.
 */
export function splitBySize<T>(items: T[], sizeOf: (x: T) => number, maxBytes: number, maxItems: number, overhead = 1024): T[][] {
  const groups: T[][] = [];
  let cur: T[] = [];
  let bytes = overhead;
  for (const it of items) {
    const n = sizeOf(it);
    if (cur.length > 0 && (bytes + n > maxBytes || cur.length >= maxItems)) {
      groups.push(cur);
      cur = [];
      bytes = overhead;
    }
    cur.push(it);
    bytes += n;
  }
  if (cur.length > 0) groups.push(cur);
  return groups;
}

/**
 * The rows of the networks table that changed since the last table or delta (net-delta.ts applies it):
 * `networks` whole when it changed (a short list), services and hosts by key.
 */
export interface NetTableDelta {
  networks?: NetTableNetwork[];
  services: NetTableService[];
  removedServices: string[];
  hosts: { node: string; peer: string }[];
  removedHosts: string[];
}
