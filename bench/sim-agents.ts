/**
 * Simulated worker nodes for bench/control-plane-scale.ts. Each one is a REAL agent as far as the
 * managers can tell: its own Ed25519 key and libp2p node (TCP + TLS 1.3 + yamux + identify +
 * gossipsub, src/net/node.ts, no listener), joined with the worker token through `/shoal/join/1`
 * (the manager issues its certificate and records the node through raft), authenticated by the
 * AuthGuard, and holding a dispatcher session with the production SessionClient (src/worker/session.ts)
 * over a libp2p stream: registration, heartbeats, assignments, batched `tasks.status` with acks,
 * reconnection with back-off to the next manager when the leader goes away.
 *
 * What is simulated is only the executor: an agent runs nothing. A task assigned with desired
 * state running is reported RUNNING at once; one whose desired state is past running is reported
 * SHUTDOWN. So the figures cover the control plane only (API, raft, orchestrator, allocator,
 * scheduler, dispatcher, transport), never a runtime.
 *
 * Run as a child process (`bun bench/sim-agents.ts`, driven over Bun's IPC by AgentPool below) so
 * that the agents use another core than the bench's own loop; or in-process with `LocalAgents`.
 */
import 'reflect-metadata'; // before anything loads @peculiar/x509 (its DI container checks at import time)
import { generateKeyPair } from '@libp2p/crypto/keys';
import { multiaddr } from '@multiformats/multiaddr';
import type { Subprocess } from 'bun';
import { resolve } from 'node:path';
import { errorMessage } from '../src/lib/errors.ts';
import { encodeFrame, FrameDecoder } from '../src/lib/frames.ts';
import type { Conn } from '../src/manager/dispatcher/conn.ts';
import { SESSION_FRAMES } from '../src/manager/dispatcher/protocol.ts';
import { AuthGuard, type LocalCredentials } from '../src/net/auth.ts';
import { dispatcherConnector } from '../src/net/dispatcher.ts';
import { requestJoin } from '../src/net/join.ts';
import { createNetNode, type NetNode } from '../src/net/node.ts';
import type { NodeDescription, Task, TaskStatus } from '../src/types/index.ts';
import { ManagerOrder } from '../src/worker/manager-order.ts';
import { SessionClient } from '../src/worker/session.ts';

/** The runtime every simulated node offers; the bench's services use it (and only these nodes have it healthy). */
export const SIM_RUNTIME = 'mock';

export interface AgentCounts {
  /** Agents joined (certificate issued). */
  joined: number;
  /** Agents with a registered session now. */
  connected: number;
  /** Sessions registered so far, over all agents (reconnects count again). */
  registrations: number;
  /** Distinct tasks seen assigned with desired state running. */
  assigned: number;
  /** Of those, reported RUNNING and acknowledged by the dispatcher (written to the store). */
  runningAcked: number;
  /** Status updates not yet acknowledged, over all agents. */
  unacked: number;
  /** `assignments` frames with changes (not a full set) received, and `tasks.status` frames sent. */
  assignmentFrames: number;
  statusFrames: number;
  /** Wall clock (ms) of the first and the last new assignment seen. */
  firstAssignAt: number;
  lastAssignAt: number;
  /** Join or session errors, the last few. */
  errors: string[];
  /** Why sessions ended or failed, with counts (ids and addresses blanked out). */
  reasons: Record<string, number>;
}

interface StartRequest {
  managers: string[]; token: string; count: number; prefix: string; joinConcurrency: number;
  /**
   * Frame types the agents leave out of `accepts` in their registration, e.g. `networks`: the
   * dispatcher then never sends them those tables. A real worker asks for them; this exists to
   * measure the rest of the control plane without their broadcast (the bench says so when used).
   */
  decline: string[];
}

/**
 * A Conn whose `session.register` frame has the `decline`d types taken out of `accepts`. The
 * SessionClient writes one whole frame per write, so the first frame is decoded, edited, encoded.
 */
function declining(conn: Conn, decline: string[]): Conn {
  if (decline.length === 0) return conn;
  let edited = false;
  return {
    get closed() { return conn.closed; },
    get remoteAddr() { return conn.remoteAddr; },
    onData: (fn) => conn.onData(fn),
    onClose: (fn) => conn.onClose(fn),
    close: (reason) => conn.close(reason),
    write(bytes) {
      if (edited) return conn.write(bytes);
      edited = true;
      const [m] = new FrameDecoder(SESSION_FRAMES).push(bytes);
      if (m?.t !== 'session.register') return conn.write(bytes);
      const accepts = (m.b.accepts ?? []).filter((a) => !decline.includes(a));
      conn.write(encodeFrame(SESSION_FRAMES, { t: 'session.register', b: { ...m.b, accepts } }));
    },
  };
}

class SimAgent {
  readonly #tasks = new Map<string, 'running' | 'shutdown'>();
  #full: Task[] | null = null;
  session: SessionClient | null = null;
  assignedEver = 0;
  reported = 0;
  assignmentFrames = 0;
  lastNew = 0;
  firstNew = 0;

  constructor(readonly node: NetNode, readonly guard: AuthGuard, readonly nodeId: string) {}

  static async join(req: StartRequest, name: string, log: (m: string) => void): Promise<SimAgent> {
    const key = await generateKeyPair('Ed25519');
    // No listener: a worker dials its managers and serves nothing (src/daemon/cluster-net.ts).
    const node = await createNetNode({ privateKey: key, listen: [] });
    let creds: LocalCredentials | null = null;
    const guard = new AuthGuard(node, {
      credentials: () => {
        if (!creds) throw new Error('not joined yet');
        return creds;
      },
    });
    await node.start();
    let joined;
    const failures: string[] = [];
    // Joining through any manager works (followers forward the write); try them in turn, a few
    // rounds: a loaded manager times out handshakes, as it would for a real fleet joining at once.
    for (let round = 0; round < 3 && !joined; round++) {
      if (round > 0) await Bun.sleep(1000 * round);
      for (const addr of req.managers) {
        try {
          joined = await requestJoin(node, multiaddr(toMultiaddr(addr)), req.token, { timeoutMs: 60_000 });
          break;
        } catch (err) {
          failures.push(`${addr}: ${errorMessage(err)}`);
        }
      }
    }
    if (!joined) {
      await Promise.resolve(node.stop()).catch(() => {});
      throw new Error(`agent ${name} could not join: ${failures.join('; ')}`);
    }
    creds = { clusterId: joined.clusterId, trust: joined.trust, identity: joined.identity };
    await guard.start();
    const agent = new SimAgent(node, guard, joined.identity.nodeId);
    const known = [...new Set([...joined.managers, ...req.managers])];
    const picker = new ManagerOrder();
    agent.session = new SessionClient({
      nodeId: agent.nodeId,
      // As the daemon's dispatcherLink: the managers in the order of src/worker/manager-order.ts.
      connect: (signal, hint) => {
        const list = agent.session?.managers.length ? agent.session.managers : known;
        const order = picker.next(list, hint);
        const report = (answered: number | null) => picker.answered(answered === null ? null : order[answered] ?? null);
        return dispatcherConnector(guard, () => order.map((a) => multiaddr(toMultiaddr(a))), report)(signal).then((c) => declining(c, req.decline));
      },
      description: async () => description(name),
      // The production back-off (100 ms doubling to 8 s, jittered), so a leader change brings the
      // same reconnection wave a real fleet would.
      handlers: {
        registered: () => agent.#reportAll(),
        assignments: (full, last, tasks, removed) => agent.#onAssignments(full, last, tasks, removed),
        logsRequest: (req, send) => { send({ t: 'logs.end', b: { requestId: req.requestId, error: 'simulated node: no logs' } }); },
        logsCancel: () => {},
        closed: () => { agent.#full = null; },
      },
      log: (m) => log(`${name}: ${m}`),
    });
    agent.session.start();
    return agent;
  }

  #status(state: 'running' | 'shutdown'): TaskStatus {
    return { State: state, Message: 'simulated', Timestamp: new Date().toISOString() };
  }

  #reportAll(): void {
    for (const [id, s] of this.#tasks) this.session?.report(id, this.#status(s));
  }

  #apply(t: Task): void {
    const want: 'running' | 'shutdown' = t.DesiredState === 'running' || t.DesiredState === 'ready' ? 'running' : 'shutdown';
    const had = this.#tasks.get(t.ID);
    if (had === undefined && want === 'running') {
      this.assignedEver++;
      const now = Date.now();
      if (!this.firstNew) this.firstNew = now;
      this.lastNew = now;
    }
    if (had === want) return;
    this.#tasks.set(t.ID, want);
    // A task already at or past this state (a reconnect's full set) needs no report.
    if (t.Status.State === want) return;
    if (want === 'running') this.reported++;
    this.session?.report(t.ID, this.#status(want));
  }

  #onAssignments(full: boolean, last: boolean, tasks: Task[], removed: string[]): void {
    if (!full) {
      this.assignmentFrames++;
      for (const t of tasks) this.#apply(t);
      for (const id of removed) this.#tasks.delete(id);
      return;
    }
    (this.#full ??= []).push(...tasks);
    if (!last) return;
    const set = this.#full;
    this.#full = null;
    const keep = new Set(set.map((t) => t.ID));
    for (const id of [...this.#tasks.keys()]) if (!keep.has(id)) this.#tasks.delete(id);
    for (const t of set) this.#apply(t);
  }

  get runningAcked(): number {
    if (!this.session) return 0;
    let n = 0;
    for (const s of this.#tasks.values()) if (s === 'running') n++;
    return this.session.unsentStatus === 0 ? n : Math.max(0, n - this.session.unsentStatus);
  }

  async stop(): Promise<void> {
    await this.session?.stop().catch(() => {});
    await this.guard.stop().catch(() => {});
    await Promise.resolve(this.node.stop()).catch(() => {});
  }
}

function description(name: string): NodeDescription {
  return {
    Hostname: name,
    Platform: { OS: 'linux', Architecture: 'x86_64' },
    Resources: { NanoCPUs: 64e9, MemoryBytes: 256 * 2 ** 30 },
    Engine: { EngineVersion: 'shoal-sim', Plugins: [] },
    Runtimes: [{ Name: SIM_RUNTIME, Healthy: true }],
  };
}

function toMultiaddr(hostPort: string): string {
  const i = hostPort.lastIndexOf(':');
  if (i < 0) throw new Error(`manager address "${hostPort}": expected IP:PORT`);
  return `/ip4/${hostPort.slice(0, i)}/tcp/${hostPort.slice(i + 1)}`;
}

/** A set of agents in this process. */
export class LocalAgents {
  readonly agents: SimAgent[] = [];
  readonly errors: string[] = [];
  readonly reasons: Record<string, number> = {};
  #stopped = false;

  constructor(private readonly log: (m: string) => void = (m) => console.error(m)) {}

  /** Join `count` agents, `joinConcurrency` at a time; resolves when all joined (or throws the first failures). */
  async start(req: StartRequest): Promise<void> {
    let next = 0;
    const failures: string[] = [];
    const worker = async () => {
      while (!this.#stopped && next < req.count && failures.length < 5) {
        const i = next++;
        try {
          this.agents.push(await SimAgent.join(req, `${req.prefix}${i}`, (m) => this.#note(m)));
        } catch (err) {
          failures.push(errorMessage(err));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, req.joinConcurrency) }, worker));
    if (failures.length) throw new Error(`${failures.length} agents failed to join: ${failures.slice(0, 3).join(' | ')}`);
  }

  #note(m: string): void {
    const kind = /session: (closed|dispatcher refused|loop ended|[^:]*)/.exec(m);
    if (kind) {
      const key = m.replace(/^\S+: /, '').replace(/\b[0-9a-z]{25}\b/g, '<id>').replace(/\d+\.\d+\.\d+\.\d+:\d+/g, '<addr>').replace(/12D3\w+/g, '<peer>').slice(0, 160);
      this.reasons[key] = (this.reasons[key] ?? 0) + 1;
      // Expected while a leader changes or the bench stops: counted, not printed.
      if (/session: closed|dispatcher refused|no manager answered|not the raft leader/.test(m)) return;
    }
    this.errors.push(m);
    if (this.errors.length > 20) this.errors.shift();
    this.log(m);
  }

  counts(): AgentCounts {
    const c: AgentCounts = { joined: this.agents.length, connected: 0, registrations: 0, assigned: 0, runningAcked: 0, unacked: 0, assignmentFrames: 0, statusFrames: 0, firstAssignAt: 0, lastAssignAt: 0, errors: this.errors.slice(-5), reasons: { ...this.reasons } };
    for (const a of this.agents) {
      const s = a.session;
      if (s?.connected) c.connected++;
      c.registrations += s?.registrations ?? 0;
      c.assigned += a.assignedEver;
      c.assignmentFrames += a.assignmentFrames;
      c.statusFrames += s?.statusFrames ?? 0;
      c.runningAcked += a.runningAcked;
      c.unacked += s?.unsentStatus ?? 0;
      if (a.firstNew && (!c.firstAssignAt || a.firstNew < c.firstAssignAt)) c.firstAssignAt = a.firstNew;
      c.lastAssignAt = Math.max(c.lastAssignAt, a.lastNew);
    }
    return c;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.agents.map((a) => a.stop()));
  }
}

type ToChild = { cmd: 'start'; req: StartRequest } | { cmd: 'counts'; id: number } | { cmd: 'stop' };
type FromChild = { ev: 'started' } | { ev: 'failed'; error: string } | { ev: 'counts'; id: number; counts: AgentCounts } | { ev: 'stopped' };

/** Agents in a child process, driven over IPC; the child exits when this process goes away. */
export class ChildAgents {
  readonly proc: Subprocess;
  #waiters = new Map<number, (c: AgentCounts) => void>();
  #nextId = 1;
  #started = Promise.withResolvers<void>();
  #stopped = Promise.withResolvers<void>();

  constructor(readonly name: string) {
    this.proc = Bun.spawn(['bun', resolve(import.meta.dir, 'sim-agents.ts')], {
      stdout: 'inherit',
      stderr: 'inherit',
      ipc: (m: FromChild) => this.#onMessage(m),
    });
    this.#started.promise.catch(() => {});
    void this.proc.exited.then((code) => {
      this.#started.reject(new Error(`agent process ${name} exited (${code}) before its agents joined`));
      this.#stopped.resolve();
    });
  }

  #onMessage(m: FromChild): void {
    if (m.ev === 'started') this.#started.resolve();
    else if (m.ev === 'failed') this.#started.reject(new Error(`agent process ${this.name}: ${m.error}`));
    else if (m.ev === 'counts') { this.#waiters.get(m.id)?.(m.counts); this.#waiters.delete(m.id); }
    else if (m.ev === 'stopped') this.#stopped.resolve();
  }

  #send(m: ToChild): void { this.proc.send(m); }

  start(req: StartRequest): Promise<void> {
    this.#send({ cmd: 'start', req });
    return this.#started.promise;
  }

  counts(timeoutMs = 30_000): Promise<AgentCounts> {
    const id = this.#nextId++;
    return new Promise((res, rej) => {
      const timer = setTimeout(() => { this.#waiters.delete(id); rej(new Error(`agent process ${this.name} did not answer for its counts within ${timeoutMs} ms`)); }, timeoutMs);
      this.#waiters.set(id, (c) => { clearTimeout(timer); res(c); });
      this.#send({ cmd: 'counts', id });
    });
  }

  /** Ask it to stop its agents; SIGKILL when it has not exited within the bound. */
  async stop(timeoutMs = 20_000): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      try { this.#send({ cmd: 'stop' }); } catch {}
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
      await this.proc.exited;
      clearTimeout(timer);
    }
  }

  killNow(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

/** Sum the counts of several agent sets. */
export function sumCounts(cs: AgentCounts[]): AgentCounts {
  const out: AgentCounts = { joined: 0, connected: 0, registrations: 0, assigned: 0, runningAcked: 0, unacked: 0, assignmentFrames: 0, statusFrames: 0, firstAssignAt: 0, lastAssignAt: 0, errors: [], reasons: {} };
  for (const c of cs) {
    for (const [k, n] of Object.entries(c.reasons)) out.reasons[k] = (out.reasons[k] ?? 0) + n;
    out.joined += c.joined; out.connected += c.connected; out.registrations += c.registrations;
    out.assigned += c.assigned; out.runningAcked += c.runningAcked; out.unacked += c.unacked;
    out.assignmentFrames += c.assignmentFrames; out.statusFrames += c.statusFrames;
    if (c.firstAssignAt && (!out.firstAssignAt || c.firstAssignAt < out.firstAssignAt)) out.firstAssignAt = c.firstAssignAt;
    out.lastAssignAt = Math.max(out.lastAssignAt, c.lastAssignAt);
    out.errors.push(...c.errors);
  }
  return out;
}

if (import.meta.main) {
  const agents = new LocalAgents();
  // The bench went away (killed, crashed): take the agents down with it.
  process.on('disconnect', () => process.exit(0));
  // libp2p aborts what is in flight when its nodes stop: expected then, not worth a stack trace.
  let stopping = false;
  process.on('uncaughtException', (err) => {
    if (stopping && err?.name === 'AbortError') return;
    console.error(`agent process: ${err instanceof Error ? err.stack : String(err)}`);
  });
  process.on('message', (m: ToChild) => {
    if (m.cmd === 'start') {
      agents.start(m.req).then(
        () => process.send!({ ev: 'started' } satisfies FromChild),
        (err) => process.send!({ ev: 'failed', error: errorMessage(err) } satisfies FromChild),
      );
    } else if (m.cmd === 'counts') {
      process.send!({ ev: 'counts', id: m.id, counts: agents.counts() } satisfies FromChild);
    } else if (m.cmd === 'stop') {
      stopping = true;
      void agents.stop().finally(() => {
        try { process.send!({ ev: 'stopped' } satisfies FromChild); } catch {}
        process.exit(0);
      });
    }
  });
}
