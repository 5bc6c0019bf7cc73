/**
 * The pieces of one worker session on the manager's side: its end of the channel (what was sent,
 * its log streams), the refusal that closes a channel, and what a worker's description may put in
 * the store. The Dispatcher (dispatcher.ts) keeps the sessions and drives them.
 */
import { errorMessage } from '../../lib/errors.ts';
import { FrameError, type Message } from '../../lib/frames.ts';
import type { NodeDescription } from '../../types/index.ts';
import type { AssignmentTracker } from './assignments.ts';
import type { FrameChannel } from './conn.ts';
import type { LogStream } from './logs.ts';
import type { SessionErrorCode, SessionMessages } from './protocol.ts';
import type { SecretTracker } from './secrets.ts';

type Msg = Message<SessionMessages>;

export interface SessionInfo {
  sessionId: string;
  nodeId: string;
  /** Frames sent by type, e.g. `{ assignments: 3, 'heartbeat.ack': 10 }`. */
  sent: Record<string, number>;
  /** Tasks sent in assignments frames, over the session. */
  tasksSent: number;
  /** Tasks the worker currently knows as assigned. */
  assigned: number;
}

export class ServerSession {
  readonly sent: Record<string, number> = {};
  tasksSent = 0;
  /** The worker listed `endpoints` in its registration. */
  acceptsEndpoints = false;
  /** The worker listed `networks` in its registration. */
  acceptsNetworks = false;
  /** The worker listed `networks.delta`: after the first table, it gets the changed rows only. */
  acceptsNetDelta = false;
  /** The worker listed `revocations` in its registration. */
  acceptsRevocations = false;
  /** What the worker holds of secrets and configs; null when it did not list `secrets` (it gets none). */
  secrets: SecretTracker | null = null;
  /** The worker listed `acks.held`: its acks may wait for the next frame to it (protocol.ts). */
  holdsAcks = false;
  /** Status frames written and not acknowledged yet (holdsAcks), and the timer that sends them. */
  heldAcks: number[] = [];
  cancelAckHold: (() => void) | null = null;
  cancelExpiry: () => void = () => {};
  readonly logStreams = new Map<number, LogStream>();

  constructor(
    readonly sessionId: string,
    readonly nodeId: string,
    readonly channel: FrameChannel<SessionMessages>,
    readonly tracker: AssignmentTracker,
    private readonly log: (msg: string) => void,
  ) {}

  /** The held acks, taken: they ride in the frame about to be sent (the timer is cancelled). */
  takeAcks(): number[] | undefined {
    this.cancelAckHold?.();
    this.cancelAckHold = null;
    if (this.heldAcks.length === 0) return undefined;
    const acks = this.heldAcks;
    this.heldAcks = [];
    return acks;
  }

  /** The held acks in one `tasks.ack`, now. */
  flushAcks(): void {
    const acks = this.takeAcks();
    if (acks) this.send({ t: 'tasks.ack', b: { seq: acks[0]!, ...(acks.length > 1 ? { more: acks.slice(1) } : {}) } });
  }

  /**
   * An `assignments` frame of changes, halved until each part fits its bound: the tracker splits
   * them by count only, since measuring each task took an encode of its own, a third of the cost of
   * working out a node's changes (docs/scale.md, stop 29). A part keeps the order; the acks and the
   * removed ids ride in the last.
   */
  sendAssignments(b: SessionMessages['assignments']): boolean {
    try {
      return this.#counted({ t: 'assignments', b }, this.channel.send({ t: 'assignments', b }));
    } catch (err) {
      if (!(err instanceof FrameError) || b.tasks.length + b.removed.length < 2) return this.#refused('assignments', err);
      const { acks, ...rest } = b;
      const [first, second] = b.tasks.length > 1
        ? [{ ...rest, tasks: b.tasks.slice(0, b.tasks.length >> 1), removed: [] }, { ...rest, tasks: b.tasks.slice(b.tasks.length >> 1) }]
        : [{ ...rest, removed: b.removed.slice(0, b.removed.length >> 1) }, { ...rest, tasks: [], removed: b.removed.slice(b.removed.length >> 1) }];
      return this.sendAssignments(first) && this.sendAssignments(acks ? { ...second, acks } : second);
    }
  }

  /** False when closed. A frame over its bound is a bug on this side: logged and skipped, never thrown. */
  send(msg: Msg): boolean {
    try {
      return this.#counted(msg, this.channel.send(msg));
    } catch (err) {
      return this.#refused(msg.t, err);
    }
  }

  #refused(t: string, err: unknown): false {
    this.log(`dispatcher: cannot send ${t} to node ${this.nodeId}: ${errorMessage(err)}`);
    return false;
  }

  #counted(msg: Msg, ok: boolean): boolean {
    if (ok) {
      this.sent[msg.t] = (this.sent[msg.t] ?? 0) + 1;
      if (msg.t === 'assignments') this.tasksSent += msg.b.tasks.length;
    }
    return ok;
  }
}

/** The worker's description over the stored one, field by known field: nothing else reaches the store. */
export function describedAs(stored: NodeDescription, d: NodeDescription): NodeDescription {
  const out: NodeDescription = { ...stored, Hostname: d.Hostname };
  if (d.Platform && typeof d.Platform === 'object') out.Platform = { OS: String(d.Platform.OS ?? ''), Architecture: String(d.Platform.Architecture ?? '') };
  if (d.Resources && typeof d.Resources === 'object') {
    out.Resources = { NanoCPUs: Number(d.Resources.NanoCPUs) || 0, MemoryBytes: Number(d.Resources.MemoryBytes) || 0 };
  }
  if (d.Engine && typeof d.Engine === 'object') out.Engine = d.Engine;
  if (typeof d.Addr === 'string' && d.Addr.length <= 64) out.Addr = d.Addr;
  // What the build can do is the build's word alone: a node that came back on a build without a
  // feature no longer has it (src/store/patch.ts gates on it).
  if (Array.isArray(d.Features)) out.Features = d.Features.filter((f) => typeof f === 'string' && f.length <= 64).slice(0, 32);
  else delete out.Features;
  if (Array.isArray(d.Runtimes)) {
    out.Runtimes = d.Runtimes.filter((r) => r && typeof r.Name === 'string').slice(0, 64)
      .map((r) => ({ Name: r.Name, Healthy: r.Healthy === true, ...(typeof r.Message === 'string' ? { Message: r.Message } : {}) }));
  }
  return out;
}

export function refuse(channel: FrameChannel<SessionMessages>, code: SessionErrorCode, message: string): void {
  const text = message.length > 1000 ? `${message.slice(0, 999)}…` : message;
  channel.send({ t: 'session.error', b: { code, message: text } });
  channel.close(text);
}
