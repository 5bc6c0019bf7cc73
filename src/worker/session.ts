/**
 * The worker's end of the dispatcher session (swarmkit's agent/session): connect, register,
 * heartbeat, receive assignments, send task status in batches; on any break, reconnect with a
 * bounded, jittered back-off until stopped.
 */
import { AbortedError, errorMessage } from '../lib/errors.ts';
import { encodedSize, type Message } from '../lib/frames.ts';
import { type Clock, systemClock } from '../manager/dispatcher/clock.ts';
import { type Conn, FrameChannel } from '../manager/dispatcher/conn.ts';
import { NetTableRows } from '../manager/dispatcher/net-delta.ts';
import {
  type EndpointPort, type NetTable, MAX_STATUS_UPDATES_PER_FRAME, type RevokedClientCert, SESSION_FRAMES, type SessionMessages, splitBySize, type StatusUpdate,
} from '../manager/dispatcher/protocol.ts';
import type { NodeDescription, Task, TaskStatus } from '../types/index.ts';
import type { SessionHint } from './manager-order.ts';

type Msg = Message<SessionMessages>;

const MAX_UNACKED_FRAMES = 1000;
/** Target size of one `tasks.status` frame, well under its bound. */
const STATUS_FRAME_BYTES = 512 * 1024;
/** Longest status message or error sent; an executor's message past this is cut. */
const MAX_STATUS_TEXT = 4096;

function boundStatus(s: TaskStatus): TaskStatus {
  const cut = (x: string) => (x.length > MAX_STATUS_TEXT ? `${x.slice(0, MAX_STATUS_TEXT - 1)}…` : x);
  if ((s.Message ?? '').length <= MAX_STATUS_TEXT && (s.Err ?? '').length <= MAX_STATUS_TEXT) return s;
  return { ...s, Message: cut(s.Message ?? ''), ...(s.Err !== undefined ? { Err: cut(s.Err) } : {}) };
}
type Channel = FrameChannel<SessionMessages>;

export interface BackoffOptions {
  /** First retry delay. Default 100 ms. */
  initialMs?: number;
  /** Largest retry delay. Default 8 s. */
  maxMs?: number;
  /** Growth per consecutive failure. Default 2. */
  factor?: number;
}

export interface SessionHandlers {
  /** A new session is registered: re-send everything the manager may have missed. */
  registered(sessionId: string): void;
  /** `full`: the whole set, split over frames until `last`; else upserts and removals. */
  assignments(full: boolean, last: boolean, tasks: Task[], removed: string[]): void;
  /** The cluster's endpoint table (whole), for this host's ingress mesh. */
  endpoints?(ports: EndpointPort[]): void;
  networks?(table: NetTable): void;
  /** Secrets and configs for this node's tasks (offered to the dispatcher only when handled). */
  secrets?(body: SessionMessages['secrets']): void;
  /** The revoked client bundles, whole (offered to the dispatcher only when handled). */
  revocations?(revoked: RevokedClientCert[]): void;
  logsRequest(req: SessionMessages['logs.request'], send: (m: Msg) => boolean): void;
  logsCancel(requestId: number): void;
  /** The session ended (reconnecting follows unless stopped). */
  closed(reason: string): void;
  /** The role the cluster holds for this node now (sent with heartbeat acks). */
  role?(role: 'manager' | 'worker'): void;
  /** The roots the cluster wants nodes to trust (sent with heartbeat acks): differing ones mean a root rotation. */
  ca?(epoch: string): void;
}

export interface SessionClientOptions {
  nodeId: string;
  /** `hint`: how the last attempt ended, for the order of managers to ask (manager-order.ts). */
  connect: (signal: AbortSignal, hint?: SessionHint) => Promise<Conn>;
  description: (signal: AbortSignal) => Promise<NodeDescription>;
  handlers: SessionHandlers;
  clock?: Clock;
  random?: () => number;
  backoff?: BackoffOptions;
  /** Heartbeats that may go unanswered before the session is considered broken. Default 3. */
  heartbeatMisses?: number;
  /** How long to wait for `session.registered`. Default 10 s. */
  registerTimeoutMs?: number;
  log?: (msg: string) => void;
}

export class SessionClient {
  readonly #o: SessionClientOptions;
  readonly #clock: Clock;
  readonly #stop = new AbortController();
  #loop: Promise<void> | null = null;
  #channel: Channel | null = null;
  #sessionId: string | null = null;
  #managers: string[] = [];
  #registrations = 0;
  /** The last attempt's refusal, and the leader it named. */
  #refused: { leader?: string } | null = null;
  #waiters = new Set<() => void>();
  // Status waiting to be sent (latest per task; bounded by the tasks on the node), and sent but unacked.
  #pending = new Map<string, TaskStatus>();
  #unacked = new Map<number, number>(); // seq → update count
  #seq = 0;
  #flushScheduled = false;
  /** Callers of flushed() waiting: status frames sent meanwhile are marked `flush`. */
  #flushing = 0;

  constructor(opts: SessionClientOptions) {
    this.#o = opts;
    this.#clock = opts.clock ?? systemClock;
  }

  get sessionId(): string | null { return this.#sessionId; }
  /** Manager addresses from the last registration: where `connect` may try when this one is gone. */
  get managers(): string[] { return this.#managers; }
  get connected(): boolean { return this.#sessionId !== null && !!this.#channel && !this.#channel.closed; }
  /** How many sessions were registered so far (1 + reconnects). */
  get registrations(): number { return this.#registrations; }
  /** `tasks.status` frames sent so far, over every session. */
  get statusFrames(): number { return this.#seq; }
  /** Status updates not yet acknowledged by the dispatcher. */
  get unsentStatus(): number { return this.#pending.size + [...this.#unacked.values()].reduce((a, b) => a + b, 0); }

  start(): void {
    this.#loop ??= this.#run().catch((err) => this.#o.log?.(`session: loop ended: ${errorMessage(err)}`));
  }

  async stop(): Promise<void> {
    this.#stop.abort(new AbortedError('session stopped'));
    this.#channel?.close('worker stopping');
    await this.#loop;
    this.#notify();
  }

  /**
   * Send the node's description again (its runtimes' health changed). False when no session is up:
   * the next registration carries a fresh description anyway.
   */
  describe(description: NodeDescription): boolean {
    const channel = this.#channel;
    const sessionId = this.#sessionId;
    if (!channel || !sessionId || channel.closed) return false;
    try {
      return channel.send({ t: 'node.describe', b: { sessionId, description } });
    } catch (err) {
      this.#o.log?.(`session: cannot send node.describe: ${errorMessage(err)}`);
      return false;
    }
  }

  /** Queue a task's status; sent in the next batch (right away when a session is up). */
  report(taskId: string, status: TaskStatus): void {
    this.#pending.set(taskId, boundStatus(status));
    this.#scheduleFlush();
  }

  /**
   * Resolves when every reported status was acknowledged, or false after `timeoutMs`
   * (no session, a slow manager). Used before closing on shutdown.
   */
  async flushed(timeoutMs: number): Promise<boolean> {
    // A dispatcher holding acks (`acks.held`) sends them, and acks at once, on a frame marked
    // `flush`: meanwhile every frame is, and an empty one asks for the acks of those sent before.
    this.#flushing++;
    try {
      if (this.#unacked.size > 0 && this.#pending.size === 0) this.#askForAcks();
      return await this.#until(() => this.unsentStatus === 0, timeoutMs);
    } finally {
      this.#flushing--;
    }
  }

  /** Resolves true once registered (at least `count` sessions so far), false after `timeoutMs`. */
  async registered(timeoutMs: number, count = 1): Promise<boolean> {
    return this.#until(() => this.connected && this.#registrations >= count, timeoutMs);
  }

  #until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    if (cond()) return Promise.resolve(true);
    return new Promise((resolve) => {
      let cancel = () => {};
      const check = () => {
        if (cond() || this.#stop.signal.aborted) finish(cond());
      };
      const finish = (v: boolean) => { cancel(); this.#waiters.delete(check); resolve(v); };
      cancel = this.#clock.setTimer(timeoutMs, () => finish(cond()));
      this.#waiters.add(check);
    });
  }

  #notify(): void {
    for (const w of [...this.#waiters]) w();
  }

  // ------------------------------------------------------------------ connection loop

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    let failures = 0;
    let hint: SessionHint = {};
    while (!signal.aborted) {
      let registered = false;
      this.#refused = null;
      try {
        registered = await this.#session(signal, hint);
      } catch (err) {
        if (signal.aborted) break;
        this.#o.log?.(`session: ${errorMessage(err)}`);
      }
      hint = registered ? { broke: true } : this.#refused ? { refused: this.#refused } : {};
      failures = registered ? 0 : failures + 1;
      if (signal.aborted) break;
      try {
        await this.#sleep(this.#backoffMs(failures), signal);
      } catch {
        break;
      }
    }
  }

  #backoffMs(failures: number): number {
    const b = this.#o.backoff ?? {};
    const initial = b.initialMs ?? 100;
    const max = b.maxMs ?? 8_000;
    const base = Math.min(max, initial * (b.factor ?? 2) ** Math.min(Math.max(0, failures - 1), 30));
    // Full jitter over the upper half: workers that lost the same manager do not return in lockstep.
    return Math.round(base / 2 + (base / 2) * (this.#o.random ?? Math.random)());
  }

  #sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(new AbortedError());
      const onAbort = () => { cancel(); reject(new AbortedError()); };
      const cancel = this.#clock.setTimer(ms, () => { signal.removeEventListener('abort', onAbort); resolve(); });
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** One session, from connect to close. Returns whether it got registered. */
  async #session(signal: AbortSignal, hint: SessionHint): Promise<boolean> {
    const conn = await untilAborted(this.#o.connect(signal, hint), signal, (late) => late.close('worker stopping'));
    const channel = new FrameChannel(conn, SESSION_FRAMES);
    if (signal.aborted) {
      channel.close('worker stopping');
      return false;
    }
    this.#channel = channel;
    let registered = false;
    // The network table as this session's dispatcher last sent it: deltas apply to it.
    let netRows: NetTableRows | null = null;
    // One timer of each kind at a time: the next heartbeat, the wait for its ack, the registration.
    let cancelHeartbeat = () => {};
    let cancelAckWait = () => {};
    let cancelRegisterWait = () => {};
    const clearTimers = () => { cancelHeartbeat(); cancelAckWait(); cancelRegisterWait(); };
    const closed = new Promise<string>((resolve) => channel.onClose(resolve));
    const fail = (reason: string) => channel.close(reason);

    let heartbeatPeriodMs = 1000;
    const misses = this.#o.heartbeatMisses ?? 3;
    const scheduleHeartbeat = (ms: number) => {
      cancelHeartbeat();
      cancelHeartbeat = this.#clock.setTimer(ms, () => {
        if (!this.#sessionId || channel.closed) return;
        channel.send({ t: 'heartbeat', b: { sessionId: this.#sessionId } });
        cancelAckWait();
        cancelAckWait = this.#clock.setTimer(misses * heartbeatPeriodMs, () => fail('no heartbeat.ack from the dispatcher'));
      });
    };

    channel.onMessage((m) => {
      switch (m.t) {
        case 'session.registered':
          if (registered) return fail('registered twice');
          registered = true;
          cancelRegisterWait();
          this.#sessionId = m.b.sessionId;
          this.#registrations++;
          this.#unacked.clear(); // a new session: the handler re-reports everything
          this.#managers = m.b.managers;
          heartbeatPeriodMs = m.b.heartbeatPeriodMs;
          scheduleHeartbeat(heartbeatPeriodMs);
          this.#o.handlers.registered(m.b.sessionId);
          this.#scheduleFlush();
          this.#notify();
          return;
        case 'session.error':
          this.#o.log?.(`session: dispatcher refused: ${m.b.code}: ${m.b.message}`);
          this.#refused = { ...(m.b.leader ? { leader: m.b.leader } : {}) };
          return fail(`${m.b.code}: ${m.b.message}`);
        case 'heartbeat.ack':
          cancelAckWait();
          if (m.b.role) this.#o.handlers.role?.(m.b.role);
          if (m.b.ca) this.#o.handlers.ca?.(m.b.ca);
          heartbeatPeriodMs = m.b.heartbeatPeriodMs;
          scheduleHeartbeat(heartbeatPeriodMs);
          return;
        case 'tasks.ack':
          this.#acked(m.b.seq, m.b.more);
          return;
        case 'assignments':
          if (!registered) return fail('assignments before registration');
          if (m.b.acks) this.#acked(undefined, m.b.acks);
          return this.#o.handlers.assignments(m.b.full, m.b.last, m.b.tasks, m.b.removed);
        case 'endpoints':
          if (!registered) return fail('endpoints before registration');
          return this.#o.handlers.endpoints?.(m.b.ports);
        case 'networks':
          if (!registered) return fail('networks before registration');
          netRows = NetTableRows.from(m.b);
          return this.#o.handlers.networks?.(m.b);
        case 'networks.delta':
          if (!netRows) return fail('networks.delta before a networks table');
          netRows.apply(m.b);
          return this.#o.handlers.networks?.(netRows.table());
        case 'secrets':
          if (!registered) return fail('secrets before registration');
          return this.#o.handlers.secrets?.(m.b);
        case 'revocations':
          if (!registered) return fail('revocations before registration');
          return this.#o.handlers.revocations?.(m.b.revoked);
        case 'logs.request':
          return this.#o.handlers.logsRequest(m.b, (out) => {
            try {
              return channel.send(out);
            } catch (err) {
              this.#o.log?.(`session: cannot send ${out.t}: ${errorMessage(err)}`);
              return false;
            }
          });
        case 'logs.cancel':
          return this.#o.handlers.logsCancel(m.b.requestId);
        default:
          return fail(`unexpected ${m.t} from the dispatcher`);
      }
    });

    try {
      const description = await this.#o.description(signal);
      channel.send({ t: 'session.register', b: { nodeId: this.#o.nodeId, description, accepts: this.#accepts() } });
      cancelRegisterWait = this.#clock.setTimer(this.#o.registerTimeoutMs ?? 10_000, () => {
        if (!registered) fail('no session.registered within the registration timeout');
      });
      const onAbort = () => channel.close('worker stopping');
      signal.addEventListener('abort', onAbort, { once: true });
      const reason = await closed;
      signal.removeEventListener('abort', onAbort);
      if (!signal.aborted) this.#o.log?.(`session: closed: ${reason}`);
      this.#o.handlers.closed(reason);
      return registered;
    } finally {
      clearTimers();
      channel.close('session ended');
      if (this.#channel === channel) {
        this.#channel = null;
        this.#sessionId = null;
      }
      this.#notify();
    }
  }

  /** Frame types beyond the first protocol this end handles (the dispatcher sends only those). */
  #accepts(): string[] {
    const h = this.#o.handlers;
    return ['endpoints', 'networks', 'networks.delta', 'acks.held', ...(h.secrets ? ['secrets'] : []), ...(h.revocations ? ['revocations'] : [])];
  }

  // ------------------------------------------------------------------ status batches

  #acked(seq: number | undefined, more: number[] | undefined): void {
    if (seq !== undefined) this.#unacked.delete(seq);
    for (const s of more ?? []) this.#unacked.delete(s);
    this.#notify();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // Everything reported in this turn of the event loop goes out in one frame: a node's tasks
    // advance in separate turns (each on its own I/O), and the dispatcher writes a frame's updates
    // together.
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  /** An empty status frame marked `flush`: once it is written, the dispatcher sends every held ack. */
  #askForAcks(): void {
    const channel = this.#channel;
    const sessionId = this.#sessionId;
    if (channel && sessionId && !channel.closed) this.#sendStatus(channel, sessionId, [], true);
  }

  /** One `tasks.status` frame; false when it could not be sent (it is then not awaiting an ack). */
  #sendStatus(channel: Channel, sessionId: string, updates: StatusUpdate[], flush: boolean): boolean {
    const seq = ++this.#seq;
    let sent = false;
    try {
      sent = channel.send({ t: 'tasks.status', b: { sessionId, seq, updates, ...(flush ? { flush } : {}) } });
    } catch (err) {
      this.#o.log?.(`session: status frame refused: ${errorMessage(err)}`);
    }
    if (sent) this.#unacked.set(seq, updates.length);
    return sent;
  }

  #flush(): void {
    const channel = this.#channel;
    const sessionId = this.#sessionId;
    if (!channel || !sessionId || channel.closed || this.#pending.size === 0) return;
    const updates: StatusUpdate[] = [...this.#pending].map(([taskId, status]) => ({ taskId, status }));
    this.#pending.clear();
    const groups = splitBySize(updates, encodedSize, STATUS_FRAME_BYTES, MAX_STATUS_UPDATES_PER_FRAME);
    for (const [i, chunk] of groups.entries()) {
      if (!this.#sendStatus(channel, sessionId, chunk, this.#flushing > 0)) {
        // Lost with the session; `registered` on the next one makes the agent report again.
        for (const u of groups.slice(i).flat()) if (!this.#pending.has(u.taskId)) this.#pending.set(u.taskId, u.status);
        return;
      }
    }

    if (this.#unacked.size > MAX_UNACKED_FRAMES) {
      // The manager accepts frames but does not write them (no quorum?): start over elsewhere.
      channel.close(`more than ${MAX_UNACKED_FRAMES} status frames unacknowledged`);
    }
  }
}

/** `p`, or a rejection as soon as `signal` aborts; a value that arrives after that goes to `late`. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal, late: (v: T) => void): Promise<T> {
  if (signal.aborted) {
    p.then(late, () => {});
    return Promise.reject(new AbortedError());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortedError());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => { signal.removeEventListener('abort', onAbort); if (signal.aborted) late(v); else resolve(v); },
      (e) => { signal.removeEventListener('abort', onAbort); reject(e); },
    );
  });
}
