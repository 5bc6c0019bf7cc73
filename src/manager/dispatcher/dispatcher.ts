/**
 * The dispatcher: the manager's end of every worker session (swarmkit's manager/dispatcher). A
 * worker registers with its node id; the dispatcher marks the node ready with the description the
 * worker sent, sends the tasks assigned to it (in full once, then changes as the store changes),
 * writes the task status the worker reports (never backwards), and marks the node down when its
 * heartbeats stop or its session stays closed past the grace period.
 *
 * Like every stage it talks to other stages only through the store. One session's own pieces are in
 * session.ts; the tables every session receives whole (endpoints, networks, revocations) in tables.ts.
 */
import { ConflictError, NotFoundError, UnavailableError, errorMessage } from '../../lib/errors.ts';
import { MAX_FRAME_BYTES, type Message } from '../../lib/frames.ts';
import { newId } from '../../lib/ids.ts';
import type { ChangeEvent, MemoryStore } from '../../store/index.ts';
import type { Node, NodeDescription, Task } from '../../types/index.ts';
import { NS_PER_MS, taskFileRefs } from '../../types/index.ts';
import type { LogLine } from '../../executor/contract.ts';
import { AssignmentTracker } from './assignments.ts';
import { SecretTracker } from './secrets.ts';
import { type Clock, systemClock } from './clock.ts';
import { type Conn, FrameChannel } from './conn.ts';
import { LogStream, type RemoteLogOptions } from './logs.ts';
import { ACK_HOLD_MS, MAX_HELD_ACKS, SESSION_FRAMES, type SessionErrorCode, type SessionMessages } from './protocol.ts';
import { describedAs, refuse, ServerSession, type SessionInfo } from './session.ts';
import { type StatusStats, StatusWriter } from './status.ts';
import { SessionTables } from './tables.ts';
import { NetTableBuilder } from './net-table.ts';
import { caEpochOf } from '../ca/epoch.ts';
import { upgradeGraceMs } from './upgrade-grace.ts';
import { canonical } from '../stage.ts';

export type { SessionInfo } from './session.ts';

type Msg = Message<SessionMessages>;

export interface DispatcherOptions {
  store: MemoryStore;
  /**
   * How often workers send heartbeats. Default: the cluster's `Spec.Dispatcher.HeartbeatPeriod`
   * when the store has a cluster, else 1000 ms.
   */
  heartbeatPeriodMs?: number;
  /** Periods without a heartbeat before the node is marked down. Default 3. */
  heartbeatMisses?: number;
  /** How long a node whose session closed stays up, waiting for it to come back. Default misses × period. */
  downGraceMs?: number;
  /** How long a new connection may take to register. Default 10 s. */
  registerTimeoutMs?: number;
  clock?: Clock;
  /**
   * How long changes to the network table gather before their delta is sent (0: at each commit).
   * Default: 1 ms per session, at least 100 and at most 1 000 (netTableFlushInterval).
   */
  netTableFlushMs?: number;
  /** Source of heartbeat jitter, in [0, 1). */
  random?: () => number;
  /** Manager addresses handed to workers, for reconnecting elsewhere. */
  managers?: () => string[];
  /** Status updates waiting to be written, over all sessions; a session that overflows it is closed. */
  maxStatusBacklog?: number;
  /** Least real ms between two status writes (StatusWriterOptions.minGapMs). */
  statusMinGapMs?: number;
  /** Attempts per status transaction when other writers conflict with it. */
  maxConflictRetries?: number;
  maxFrameBytes?: number;
  /** Lines a remote log reader may fall behind before its stream ends. */
  maxLogBacklogLines?: number;
  /** Log streams open at once towards one node. Default 64. */
  maxLogStreamsPerNode?: number;
  log?: (msg: string) => void;
}

/**
 * The default wait between network-table flushes with `sessions` sessions: 1 ms each, within
 * [100, 1 000] ms. Each flush costs the leader a frame per session: with a fixed 100 ms, the deltas
 * took 17% of the leader's CPU samples while 1,000 nodes joined (docs/scale.md, stop 27). Growing
 * with the sessions bounds that share whatever the cluster's size, and a row still reaches every
 * worker within a second.
 */
export function netTableFlushInterval(sessions: number): number {
  return Math.min(1_000, Math.max(100, sessions));
}

/** How many times the usual grace a node unknown to a starting dispatcher gets (swarmkit's, too). */
export const UNKNOWN_GRACE_FACTOR = 2;

export class Dispatcher {
  readonly store: MemoryStore;
  readonly heartbeatMisses: number;
  readonly #status: StatusWriter;
  readonly #opts: DispatcherOptions;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #log: (msg: string) => void;
  readonly #sessions = new Map<string, ServerSession>(); // by node id
  readonly #pendingChannels = new Set<FrameChannel<SessionMessages>>();
  readonly #downTimers = new Map<string, () => void>();
  #unwatch: (() => void) | null = null;
  #running = false;
  #nextLogRequest = 1;
  readonly #tables: SessionTables;
  #nets: NetTableBuilder;
  #cancelNetFlush: (() => void) | null = null;
  /** The changes of this turn's commits are to be sent at its end (#onCommit). */
  #commitQueued = false;

  constructor(opts: DispatcherOptions) {
    this.#opts = opts;
    this.store = opts.store;
    this.heartbeatMisses = opts.heartbeatMisses ?? 3;
    this.#clock = opts.clock ?? systemClock;
    this.#random = opts.random ?? Math.random;
    this.#log = opts.log ?? (() => {});
    this.#tables = new SessionTables(opts.store);
    this.#nets = new NetTableBuilder(opts.store);
    this.#status = new StatusWriter(opts.store, {
      clock: this.#clock, log: this.#log, maxBacklog: opts.maxStatusBacklog, maxConflictRetries: opts.maxConflictRetries, minGapMs: opts.statusMinGapMs,
    });
  }

  get stats(): StatusStats { return this.#status.stats; }

  get running(): boolean { return this.#running; }

  /** The heartbeat period now: read each time, so a cluster update applies to the next heartbeat. */
  get heartbeatPeriodMs(): number {
    if (this.#opts.heartbeatPeriodMs !== undefined) return this.#opts.heartbeatPeriodMs;
    const ns = this.store.list('clusters')[0]?.Spec.Dispatcher?.HeartbeatPeriod;
    return typeof ns === 'number' && ns > 0 ? Math.max(1, Math.round(ns / NS_PER_MS)) : 1000;
  }

  get downGraceMs(): number {
    return this.#opts.downGraceMs ?? this.heartbeatMisses * this.heartbeatPeriodMs;
  }

  /**
   * The grace of one node: longer while a rolling upgrade restarts it (upgrade-grace.ts), and twice
   * as long for a node this dispatcher has not heard from since it started (`unknown`).
   */
  #graceOf(nodeId: string, unknown = false): number {
    return Math.max(this.downGraceMs * (unknown ? UNKNOWN_GRACE_FACTOR : 1), upgradeGraceMs(this.store, nodeId) ?? 0);
  }

  /**
   * Start serving sessions. Nodes the store says are ready but that have no session here (a new
   * leader, a restarted manager) get twice the grace period to come back before they are marked
   * down, as swarmkit gives its "unknown" nodes: the whole fleet reconnects at once after a leader
   * change, each worker after its back-off, and at 1,000 nodes a third of them (37,600 tasks placed
   * again) were not back within one grace (docs/scale.md, stop 29).
   */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#nets = new NetTableBuilder(this.store); // changes while stopped went unwatched: read the store afresh
    this.#unwatch = this.store.watch((ev) => this.#onChange(ev));
    for (const n of this.store.list('nodes')) {
      if (n.Status.State === 'ready' && !this.#sessions.has(n.ID)) this.#armDown(n.ID, 'node did not reconnect to the dispatcher', true);
    }
  }

  /** Close every session (workers reconnect elsewhere) and stop watching; pending status is written first. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#unwatch?.();
    this.#unwatch = null;
    this.#cancelNetFlush?.();
    this.#cancelNetFlush = null;
    for (const cancel of this.#downTimers.values()) cancel();
    this.#downTimers.clear();
    for (const ch of this.#pendingChannels) ch.close('dispatcher stopped');
    this.#pendingChannels.clear();
    await this.#status.flush();
    for (const s of [...this.#sessions.values()]) this.#closeSession(s, 'shutting-down', 'the dispatcher is stopping', false);
  }

  /**
   * Serve one worker connection: it must register first. `nodeId` is the node the transport has
   * authenticated (libp2p: its certificate); a session registering as any other node is refused.
   */
  accept(conn: Conn, opts: { nodeId?: string } = {}): void {
    const channel = new FrameChannel(conn, SESSION_FRAMES, { maxFrameBytes: this.#opts.maxFrameBytes });
    if (!this.#running) {
      refuse(channel, 'shutting-down', 'the dispatcher is not running');
      return;
    }
    this.#pendingChannels.add(channel);
    const cancelTimeout = this.#clock.setTimer(this.#opts.registerTimeoutMs ?? 10_000, () => {
      refuse(channel, 'bad-request', 'no session.register within the registration timeout');
    });
    channel.onClose(() => { cancelTimeout(); this.#pendingChannels.delete(channel); });
    channel.onMessage((m) => {
      if (m.t !== 'session.register') {
        refuse(channel, 'bad-request', `expected session.register, got ${m.t}`);
        return;
      }
      cancelTimeout();
      if (opts.nodeId !== undefined && m.b.nodeId !== opts.nodeId) {
        refuse(channel, 'bad-request', `this connection is authenticated as node ${opts.nodeId}, not ${m.b.nodeId}: a node registers as itself`);
        return;
      }
      channel.onMessage(() => {}); // anything before `registered` is ignored; the worker waits for it
      this.#register(channel, m.b.nodeId, m.b.description, m.b.accepts ?? []).catch((err) => {
        this.#log(`dispatcher: registering node ${m.b.nodeId} failed: ${errorMessage(err)}`);
        refuse(channel, 'overloaded', `registration failed: ${errorMessage(err)}`);
      });
    });
  }

  /** Sessions now open, for `node ls`-style views and tests. */
  sessions(): SessionInfo[] {
    return [...this.#sessions.values()].map((s) => this.#info(s));
  }

  session(nodeId: string): SessionInfo | undefined {
    const s = this.#sessions.get(nodeId);
    return s && this.#info(s);
  }

  #info(s: ServerSession): SessionInfo {
    return { sessionId: s.sessionId, nodeId: s.nodeId, sent: { ...s.sent }, tasksSent: s.tasksSent, assigned: s.tracker.size };
  }

  /**
   * A task's logs, read from the worker that runs it. Throws UnavailableError when that worker has
   * no session with this dispatcher.
   */
  taskLogs(taskId: string, opts: RemoteLogOptions = {}): AsyncIterable<LogLine> {
    const task = this.store.get('tasks', taskId);
    if (!task) throw new NotFoundError(`task ${taskId} not found`);
    if (!task.NodeID) throw new UnavailableError(`task ${taskId} has not been assigned to a node yet`);
    const s = this.#sessions.get(task.NodeID);
    if (!s) throw new UnavailableError(`node ${task.NodeID} running task ${taskId} is not connected to this manager`);
    const maxStreams = this.#opts.maxLogStreamsPerNode ?? 64;
    if (s.logStreams.size >= maxStreams) throw new UnavailableError(`node ${task.NodeID} is already serving ${maxStreams} log streams; try again later`);
    const requestId = this.#nextLogRequest++;
    const stream = new LogStream(requestId, this.#opts.maxLogBacklogLines ?? 10_000, () => {
      s.logStreams.delete(requestId);
      s.send({ t: 'logs.cancel', b: { requestId } });
    });
    s.logStreams.set(requestId, stream);
    const req: SessionMessages['logs.request'] = { requestId, taskId };
    if (opts.follow) req.follow = true;
    if (typeof opts.since === 'number') req.since = opts.since;
    if (typeof opts.tail === 'number') req.tail = opts.tail;
    s.send({ t: 'logs.request', b: req });
    const signal = opts.signal;
    return stream.iterate(signal);
  }

  // ------------------------------------------------------------------ registration

  async #register(channel: FrameChannel<SessionMessages>, nodeId: string, description: NodeDescription, accepts: string[]): Promise<void> {
    if (!this.store.get('nodes', nodeId)) {
      refuse(channel, 'unknown-node', `node ${nodeId} is not a member of this cluster; join it with a join token first`);
      return;
    }
    const previous = this.#sessions.get(nodeId);
    if (previous) this.#closeSession(previous, 'bad-request', 'replaced by a newer session of the same node', false);
    this.#cancelDown(nodeId);
    // A node that comes back as the store has it writes nothing: after a leader change the whole
    // fleet registers again, ready as before, and each write woke the orchestrator and the
    // scheduler for a pass over every task (a quarter of the new leader's CPU while 1,000 workers
    // came back; docs/scale.md, stop 32).
    const found = await this.#updateNode(nodeId, (n) => {
      const next: Node = {
        ...n,
        Description: describedAs(n.Description, description),
        Status: { ...n.Status, State: 'ready', Message: '', ...(channel.conn.remoteAddr ? { Addr: channel.conn.remoteAddr } : {}) },
      };
      const same = n.Status.State === next.Status.State && (n.Status.Message ?? '') === next.Status.Message && n.Status.Addr === next.Status.Addr
        && canonical(n.Description) === canonical(next.Description);
      return same ? null : next;
    });
    if (!found) {
      refuse(channel, 'unknown-node', `node ${nodeId} was removed from the cluster`);
      return;
    }
    if (channel.closed || !this.#running) return;
    this.#pendingChannels.delete(channel);
    const current = this.#sessions.get(nodeId);
    if (current) this.#closeSession(current, 'bad-request', 'replaced by a newer session of the same node', false);

    const maxFrame = Math.min(this.#opts.maxFrameBytes ?? MAX_FRAME_BYTES, MAX_FRAME_BYTES);
    const s = new ServerSession(newId(), nodeId, channel, new AssignmentTracker(nodeId, maxFrame), this.#log);
    s.acceptsEndpoints = accepts.includes('endpoints');
    s.acceptsNetworks = accepts.includes('networks');
    s.acceptsNetDelta = s.acceptsNetworks && accepts.includes('networks.delta');
    s.acceptsRevocations = accepts.includes('revocations');
    s.holdsAcks = accepts.includes('acks.held');
    if (accepts.includes('secrets')) s.secrets = new SecretTracker(nodeId, maxFrame);
    this.#sessions.set(nodeId, s);
    channel.onMessage((m) => this.#onMessage(s, m));
    channel.onClose((reason) => this.#onSessionClosed(s, reason));
    s.send({ t: 'session.registered', b: { sessionId: s.sessionId, nodeId, heartbeatPeriodMs: this.#jitteredPeriod(), managers: this.#opts.managers?.() ?? [] } });
    // The full set is computed synchronously with the session joining the map: no change is missed.
    for (const b of s.secrets?.sync(this.store) ?? []) s.send({ t: 'secrets', b });
    for (const b of s.tracker.full(this.store)) s.send({ t: 'assignments', b });
    if (s.acceptsEndpoints) s.send({ t: 'endpoints', b: this.#tables.endpoints() });
    // The table as last flushed: a change not flushed yet reaches this session with the next delta.
    if (s.acceptsNetworks) s.send({ t: 'networks', b: this.#nets.full() });
    const revoked = s.acceptsRevocations ? this.#tables.revocations() : null;
    if (revoked) s.send({ t: 'revocations', b: revoked });
    this.#armExpiry(s);
    this.#log(`dispatcher: node ${nodeId} registered (session ${s.sessionId})`);
  }

  #onMessage(s: ServerSession, m: Msg): void {
    switch (m.t) {
      case 'heartbeat':
        if (m.b.sessionId !== s.sessionId) return this.#closeSession(s, 'bad-request', 'heartbeat for another session');
        this.#armExpiry(s);
        {
          const role = this.store.get('nodes', s.nodeId)?.Spec.Role;
          const root = this.store.list('clusters')[0]?.RootCA;
          s.send({ t: 'heartbeat.ack', b: { heartbeatPeriodMs: this.#jitteredPeriod(), ...(role ? { role } : {}), ...(root ? { ca: caEpochOf(root) } : {}) } });
        }
        return;
      case 'node.describe':
        if (m.b.sessionId !== s.sessionId) return this.#closeSession(s, 'bad-request', 'description for another session');
        this.#updateNode(s.nodeId, (n) => ({ ...n, Description: describedAs(n.Description, m.b.description) }))
          .catch((err) => this.#log(`dispatcher: node ${s.nodeId}: cannot store its new description: ${errorMessage(err)}`));
        return;
      case 'tasks.status':
        if (m.b.sessionId !== s.sessionId) return this.#closeSession(s, 'bad-request', 'status for another session');
        if (!this.#status.enqueue(s.nodeId, m.b.updates, () => this.#ack(s, m.b.seq, m.b.flush === true))) {
          this.#closeSession(s, 'overloaded', 'too many task status updates waiting to be written; reconnect later');
        }
        return;
      case 'logs.line':
        s.logStreams.get(m.b.requestId)?.push(m.b.lines);
        return;
      case 'logs.end':
        s.logStreams.get(m.b.requestId)?.end(m.b.error);
        s.logStreams.delete(m.b.requestId);
        return;
      default:
        return this.#closeSession(s, 'bad-request', `unexpected ${m.t} from a worker`);
    }
  }

  /** A status frame of `s` written: acknowledged now, or held for the next frame to it (at most ACK_HOLD_MS). */
  #ack(s: ServerSession, seq: number, flush: boolean): void {
    if (!s.holdsAcks) {
      s.send({ t: 'tasks.ack', b: { seq } });
      return;
    }
    if (this.#sessions.get(s.nodeId) !== s) return; // closed: the worker re-reports on its next session
    s.heldAcks.push(seq);
    if (flush || s.heldAcks.length >= MAX_HELD_ACKS) return s.flushAcks();
    s.cancelAckHold ??= this.#clock.setTimer(ACK_HOLD_MS, () => {
      s.cancelAckHold = null;
      s.flushAcks();
    });
  }

  #closeSession(s: ServerSession, code: SessionErrorCode, message: string, armDown = true): void {
    if (this.#sessions.get(s.nodeId) === s) this.#sessions.delete(s.nodeId);
    s.cancelExpiry();
    // What was written is acknowledged before the channel closes (else dropped: the worker re-reports).
    if (s.channel.closed) s.takeAcks();
    else s.flushAcks();
    for (const stream of s.logStreams.values()) stream.end(`session with node ${s.nodeId} closed: ${message}`);
    s.logStreams.clear();
    if (!s.channel.closed) refuse(s.channel, code, message);
    if (armDown && this.#running && !this.#sessions.has(s.nodeId)) this.#armDown(s.nodeId, `session closed: ${message}`);
  }

  #onSessionClosed(s: ServerSession, reason: string): void {
    if (this.#sessions.get(s.nodeId) !== s) return; // replaced or already handled
    this.#log(`dispatcher: session of node ${s.nodeId} closed: ${reason}`);
    this.#closeSession(s, 'bad-request', reason);
  }

  // ------------------------------------------------------------------ heartbeats and node state

  #jitteredPeriod(): number {
    // Spread workers' heartbeats out; never longer than the period the expiry is counted in.
    return Math.max(1, Math.round(this.heartbeatPeriodMs * (1 - 0.2 * this.#random())));
  }

  #armExpiry(s: ServerSession): void {
    s.cancelExpiry();
    s.cancelExpiry = this.#clock.setTimer(this.heartbeatMisses * this.heartbeatPeriodMs, () => {
      if (this.#sessions.get(s.nodeId) !== s) return;
      this.#log(`dispatcher: node ${s.nodeId} missed its heartbeats`);
      const upgrading = upgradeGraceMs(this.store, s.nodeId) !== null;
      this.#closeSession(s, 'bad-request', 'heartbeat timeout', upgrading);
      if (!upgrading) void this.#markDown(s.nodeId, 'heartbeat failure');
    });
  }

  #armDown(nodeId: string, message: string, unknown = false): void {
    this.#cancelDown(nodeId);
    const cancel = this.#clock.setTimer(this.#graceOf(nodeId, unknown), () => {
      this.#downTimers.delete(nodeId);
      void this.#markDown(nodeId, message);
    });
    this.#downTimers.set(nodeId, cancel);
  }

  #cancelDown(nodeId: string): void {
    this.#downTimers.get(nodeId)?.();
    this.#downTimers.delete(nodeId);
  }

  async #markDown(nodeId: string, message: string): Promise<void> {
    try {
      await this.#updateNode(nodeId, (n) => {
        // A session that came back meanwhile wins.
        if (this.#sessions.has(nodeId) || n.Status.State === 'down') return null;
        return { ...n, Status: { ...n.Status, State: 'down', Message: message } };
      });
    } catch (err) {
      this.#log(`dispatcher: marking node ${nodeId} down failed: ${errorMessage(err)}`);
    }
  }

  /** Read-modify-write of a node with bounded retries. False when the node does not exist. */
  async #updateNode(nodeId: string, change: (n: Node) => Node | null): Promise<boolean> {
    const attempts = this.#opts.maxConflictRetries ?? 10;
    for (let i = 0; ; i++) {
      try {
        return await this.store.update((tx) => {
          const n = tx.get('nodes', nodeId);
          if (!n) return false;
          const next = change(n);
          if (next) tx.update('nodes', next);
          return true;
        });
      } catch (err) {
        if (!(err instanceof ConflictError || err instanceof NotFoundError) || i + 1 >= attempts) throw err;
      }
    }
  }

  // ------------------------------------------------------------------ assignments

  #needsFiles(taskId: string): boolean {
    const t = this.store.get('tasks', taskId);
    return !!t && taskFileRefs(t.Spec).length > 0;
  }

  /**
   * The network table changes with every join (its host) and every task that starts or stops: one
   * flush per interval sends the rows changed since the last, so a wave of N joins costs N small
   * deltas per session at most, not N whole tables (O(N²) bytes and CPU on the leader). A flush is
   * a frame to every session, so the interval grows with them (netTableFlushInterval).
   */
  #scheduleNetFlush(): void {
    const ms = this.#opts.netTableFlushMs ?? netTableFlushInterval(this.#sessions.size);
    if (ms <= 0) return this.#flushNets();
    if (this.#cancelNetFlush) return;
    this.#cancelNetFlush = this.#clock.setTimer(ms, () => {
      this.#cancelNetFlush = null;
      this.#flushNets();
    });
  }

  #flushNets(): void {
    if (!this.#running) return;
    const delta = this.#nets.flush();
    if (!delta) return;
    // Past the bounds the table leaves rows out, and a worker's rows would drift from it: send it whole.
    const whole = this.#nets.truncated ? this.#nets.full() : null;
    for (const s of this.#sessions.values()) {
      if (!s.acceptsNetworks) continue;
      if (s.acceptsNetDelta && !whole) s.send({ t: 'networks.delta', b: delta });
      else s.send({ t: 'networks', b: whole ?? this.#nets.full() });
    }
  }

  /**
   * What the commits applied in this turn changed goes out once, at its end: the log applies every
   * entry committed together in one turn, and a stage's batches commit together (writeTasks), so a
   * node given a task in each of ten batches gets one frame of ten tasks, and answers with one status
   * frame, not ten (swarmkit's dispatcher batches its assignments the same way, by time). A microtask,
   * not a timer: nothing waits longer than the turn, and a simulated clock need not move.
   */
  #onCommit(): void {
    if (this.#commitQueued) return;
    this.#commitQueued = true;
    queueMicrotask(() => {
      this.#commitQueued = false;
      if (this.#running) this.#sendChanges();
    });
  }

  #sendChanges(): void {
    for (const s of this.#sessions.values()) {
      if (!s.tracker.hasDirty) continue;
      // sync() scans every task of the node: only when the worker holds files or a changed task
      // names some (else each commit costs O(tasks on the node): O(N²) to start N tasks).
      const files = s.secrets && (s.secrets.size > 0 || s.tracker.someDirty((id) => this.#needsFiles(id)));
      for (const b of files ? s.secrets!.sync(this.store) : []) s.send({ t: 'secrets', b });
      const frames = s.tracker.changes(this.store);
      const acks = frames.length ? s.takeAcks() : undefined;
      if (acks) frames.at(-1)!.acks = acks;
      for (const b of frames) s.sendAssignments(b);
    }
    const { endpoints, revocations } = this.#tables.changed();
    if (endpoints) for (const s of this.#sessions.values()) if (s.acceptsEndpoints) s.send({ t: 'endpoints', b: endpoints });
    if (this.#nets.dirty) this.#scheduleNetFlush();
    if (revocations) for (const s of this.#sessions.values()) if (s.acceptsRevocations) s.send({ t: 'revocations', b: revocations });
  }

  #onChange(ev: ChangeEvent): void {
    if (ev.kind === 'commit') {
      this.#onCommit();
      return;
    }
    this.#tables.note(ev);
    this.#nets.note(ev);
    if (ev.table === 'tasks') {
      const t = ev.object as Task;
      this.#sessions.get(t.NodeID)?.tracker.markDirty(t.ID);
      if (ev.kind === 'update') {
        const old = ev.old as Task;
        if (old.NodeID !== t.NodeID) this.#sessions.get(old.NodeID)?.tracker.markDirty(t.ID);
      }
    } else if (ev.table === 'nodes' && ev.kind === 'delete') {
      const s = this.#sessions.get(ev.object.ID);
      if (s) this.#closeSession(s, 'unknown-node', `node ${s.nodeId} was removed from the cluster`, false);
      this.#cancelDown(ev.object.ID);
    }
  }
}
