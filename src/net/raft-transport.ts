/**
 * The raft-host `Transport` over libp2p: one long-lived outbound `/shoal/raft/1` stream per peer
 * carrying framed raft messages (each direction has its own stream). Raft copes with loss, so this
 * never blocks and never retries a message: while a peer is unreachable its messages are dropped
 * (a few are queued during a dial), and a failed dial is not retried for `redialMs`.
 * A message is accepted only if its `from` is the node id the sender's certificate names.
 */
import type { PeerId } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import { type FrameSchema, FrameError, MAX_FRAME_BYTES, is } from '../lib/frames.ts';
import { FrameChannel } from '../manager/dispatcher/conn.ts';
import type { Message, MessageType, NodeId } from '../raft/index.ts';
import type { Transport } from '../raft-host/transport.ts';
import type { AuthGuard } from './auth.ts';
import { PROTOCOLS } from './protocols.ts';
import { StreamConn } from './stream-conn.ts';
import { growReceiveWindow } from './yamux-window.ts';

const MESSAGE_TYPES: readonly MessageType[] = [
  'preVote', 'preVoteResp', 'vote', 'voteResp', 'append', 'appendResp', 'heartbeat', 'heartbeatResp',
  'snapshot', 'snapshotResp', 'timeoutNow', 'readIndex', 'readIndexResp', 'propose',
];

/** The receive window a manager offers on each raft stream to it: one frame at its bound. */
export const RAFT_RECEIVE_WINDOW = MAX_FRAME_BYTES;

interface RaftFrames {
  msg: Message;
}

export const RAFT_FRAMES: FrameSchema<RaftFrames> = {
  msg: {
    version: 1,
    maxBytes: MAX_FRAME_BYTES,
    check: is.shape({ type: is.oneOf(MESSAGE_TYPES), from: is.string(64), to: is.string(64), term: is.number() }),
  },
};

export interface Libp2pRaftTransportOptions {
  selfId: NodeId;
  /** Where a raft peer is: its peer id (when connected) or a dialable multiaddr; null if unknown. */
  locate: (nodeId: NodeId) => PeerId | Multiaddr | null;
  /** Messages held per peer while its stream is being opened. */
  maxPendingPerPeer?: number;
  /** After a failed dial, messages to that peer are dropped for this long. */
  redialMs?: number;
  now?: () => number;
  onError?: (nodeId: NodeId, err: unknown) => void;
}

interface Link {
  channel: FrameChannel<RaftFrames> | null;
  dialing: boolean;
  pending: Message[];
  failedAt: number;
}

export class Libp2pRaftTransport implements Transport {
  readonly #links = new Map<NodeId, Link>();
  readonly #inbound = new Set<FrameChannel<RaftFrames>>();
  /** Peers that opened a raft stream to us: reachable on that connection even before `locate` knows them. */
  readonly #heardFrom = new Map<NodeId, PeerId>();
  #handler: ((m: Message) => void) | null = null;
  #stopped = false;
  readonly #maxPending: number;
  readonly #redialMs: number;
  readonly #now: () => number;

  constructor(private readonly guard: AuthGuard, private readonly opts: Libp2pRaftTransportOptions) {
    this.#maxPending = opts.maxPendingPerPeer ?? 256;
    this.#redialMs = opts.redialMs ?? 500;
    this.#now = opts.now ?? Date.now;
  }

  async start(): Promise<void> {
    await this.guard.handle(PROTOCOLS.raft, ({ stream, connection, peer }) => {
      // Room for a whole append at once (the frame bound), not yamux's 256 KiB.
      growReceiveWindow(stream, RAFT_RECEIVE_WINDOW);
      const ch = new FrameChannel(new StreamConn(stream, connection), RAFT_FRAMES);
      this.#heardFrom.set(peer.nodeId, connection.remotePeer);
      this.#inbound.add(ch);
      ch.onClose(() => this.#inbound.delete(ch));
      ch.onMessage(({ b: m }) => {
        if (m.from !== peer.nodeId || m.to !== this.opts.selfId) {
          ch.close(`raft message from "${m.from}" to "${m.to}" on the stream of node ${peer.nodeId} to ${this.opts.selfId}`);
          return;
        }
        this.#handler?.(m);
      });
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const l of this.#links.values()) l.channel?.close('stopping');
    for (const ch of this.#inbound) ch.close('stopping');
    this.#links.clear();
    this.#inbound.clear();
  }

  onMessage(handler: (m: Message) => void): () => void {
    this.#handler = handler;
    return () => {
      if (this.#handler === handler) this.#handler = null;
    };
  }

  send(msgs: Message[]): void {
    if (this.#stopped) return;
    for (const m of msgs) {
      const link = this.#link(m.to);
      if (link.channel && !link.channel.closed) {
        this.#sendOn(link, m);
        continue;
      }
      link.channel = null;
      if (!link.dialing && this.#now() - link.failedAt < this.#redialMs) continue; // unreachable: drop
      if (link.pending.length >= this.#maxPending) link.pending.shift();
      link.pending.push(m);
      if (!link.dialing) void this.#dial(m.to, link);
    }
  }

  /**
   * Open (or reopen) the stream to each of `nodeIds` that has none, without a message to send. The
   * daemon calls it every second with the other raft members: followers never write to each other
   * while a leader lives, so without it their first link is dialled when the leader has died, in the
   * middle of the fleet's reconnection storm, when a survivor may refuse or time out new connections
   * (a failover at 1,000 nodes found no leader in 180 s, docs/scale.md, stop 27).
   */
  keepLinks(nodeIds: Iterable<NodeId>): void {
    if (this.#stopped) return;
    for (const id of nodeIds) {
      if (id === this.opts.selfId) continue;
      const link = this.#link(id);
      if (link.channel && !link.channel.closed) continue;
      link.channel = null;
      if (link.dialing || this.#now() - link.failedAt < this.#redialMs) continue;
      void this.#dial(id, link);
    }
  }

  /**
   * Whether an outbound stream to `nodeId` is open now. keepLinks holds one open to every other
   * member, so for the host's ticks false means it closed (a peer that died resets it) or cannot be
   * reopened.
   */
  reachable(nodeId: NodeId): boolean {
    const ch = this.#links.get(nodeId)?.channel;
    return !!ch && !ch.closed;
  }

  #link(nodeId: NodeId): Link {
    let l = this.#links.get(nodeId);
    if (!l) {
      l = { channel: null, dialing: false, pending: [], failedAt: -Infinity };
      this.#links.set(nodeId, l);
    }
    return l;
  }

  #sendOn(link: Link, m: Message): void {
    try {
      link.channel!.send({ t: 'msg', b: m });
    } catch (err) {
      // Over the frame bound: a raft configuration bug (maxSizePerMsg); drop it, raft resends smaller.
      if (err instanceof FrameError) this.opts.onError?.(m.to, err);
      else throw err;
    }
  }

  async #dial(nodeId: NodeId, link: Link): Promise<void> {
    link.dialing = true;
    try {
      // A new member hears from the leader before its store says where the leader is.
      const target = this.opts.locate(nodeId) ?? this.#heardFrom.get(nodeId) ?? null;
      if (!target) throw new Error(`no address known for raft peer ${nodeId}`);
      const { stream, connection, peer } = await this.guard.open(target, PROTOCOLS.raft);
      if (peer.nodeId !== nodeId) {
        stream.abort(new Error(`expected raft peer ${nodeId}, reached ${peer.nodeId}`));
        throw new Error(`the address of raft peer ${nodeId} belongs to node ${peer.nodeId}`);
      }
      if (this.#stopped) {
        stream.abort(new Error('stopping'));
        return;
      }
      const ch = new FrameChannel(new StreamConn(stream, connection), RAFT_FRAMES);
      ch.onMessage(() => ch.close('raft streams carry one direction'));
      link.channel = ch;
      for (const m of link.pending.splice(0)) this.#sendOn(link, m);
    } catch (err) {
      link.failedAt = this.#now();
      link.pending = [];
      this.opts.onError?.(nodeId, err);
    } finally {
      link.dialing = false;
    }
  }
}
