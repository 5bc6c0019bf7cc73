/**
 * Mutual authentication on top of the libp2p handshake (`/shoal/auth/1`). @libp2p/tls proves that a
 * peer holds the key of its peer id but cannot carry our cluster certificate, so right after a
 * connection opens the dialer sends its certificate, the listener verifies it (chain to the pinned
 * root, validity, cluster, and that its key is the peer's libp2p key) and answers with its own, which
 * the dialer verifies in turn. Until that has passed on a connection, every protocol registered
 * through `handle()` refuses the peer; a protocol also refuses roles it is not for, removed nodes and
 * expired certificates.
 */
import type { Connection, PeerId, Stream } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import { ShoalError, errorMessage } from '../lib/errors.ts';
import { type FrameSchema, type Message, is } from '../lib/frames.ts';
import { ConnClosedError, FrameChannel } from '../manager/dispatcher/conn.ts';
import { type ClusterTrust, type NodeIdentity, verifyNodeCert } from '../manager/ca/index.ts';
import type { NetNode, PeerDenyList } from './node.ts';
import { PROTOCOLS, type ProtocolSpec } from './protocols.ts';
import { StreamConn } from './stream-conn.ts';

/** How long a refused dialer has to read why before the listener closes the connection. */
const REFUSAL_GRACE_MS = 1_000;

/** This node refused a peer, or may not do what it tried. */
export class AuthError extends ShoalError {
  override readonly status = 403;
}

/** The other end refused this node; the message carries its reason. */
export class AuthRefusedError extends AuthError {}

interface AuthMessages {
  hello: { cert: string };
  refuse: { reason: string };
}

const AUTH_SCHEMA: FrameSchema<AuthMessages> = {
  hello: { version: 1, maxBytes: 16 * 1024, check: is.shape({ cert: is.string(12 * 1024) }) },
  refuse: { version: 1, maxBytes: 4 * 1024, check: is.shape({ reason: is.string(2048) }) },
};

/** What this node presents and trusts; read afresh for every handshake (certificates get renewed). */
export interface LocalCredentials {
  clusterId: string;
  trust: ClusterTrust;
  identity: NodeIdentity;
}

export interface AuthGuardOptions {
  credentials: () => LocalCredentials;
  /** Nodes removed from the cluster: refused at authentication and on every new stream. */
  isRemoved?: (nodeId: string) => boolean;
  /** Shared with the node's connection gater, so that a revoked peer cannot even connect. */
  denyList?: PeerDenyList;
  /** Bound on the certificate exchange; an inbound connection not authenticated by then is closed. */
  authTimeoutMs?: number;
  now?: () => number;
  /** Told about every refusal on this end (logs, metrics, tests). */
  onRefused?: (e: { peerId: string; protocol: string; reason: string }) => void;
  /** The certificate check (tests count its calls); verifyNodeCert otherwise. */
  verify?: typeof verifyNodeCert;
}

/**
 * Certificates that verified, remembered by their text and the roots they verified under: a worker
 * that reconnects presents the same one each time, and parsing and checking it (JavaScript ASN.1 and
 * a signature) was 13% of a surviving manager's CPU while 1,000 workers reconnected after a leader
 * died (docs/scale.md, stop 27). What depends on the moment is checked again on every use: the
 * dates, the key of the peer presenting it, and whether the node was removed.
 */
const VERIFIED_MAX = 8192;

export interface GuardedStream {
  stream: Stream;
  connection: Connection;
  /** The verified identity of the other end. */
  peer: NodeIdentity;
}

export type GuardedHandler = (s: GuardedStream) => void | Promise<void>;

interface ConnState {
  connection: Connection;
  identity: NodeIdentity | null;
  /** A certificate exchange is under way: its outcome, not the connection's close, settles `result`. */
  exchanging: boolean;
  /** Why authentication failed on this connection, once it has. */
  failure: Error | null;
  result: PromiseWithResolvers<NodeIdentity>;
  timer?: ReturnType<typeof setTimeout>;
}

export class AuthGuard {
  readonly #states = new Map<string, ConnState>();
  readonly #protocols: string[] = [];
  readonly #graceTimers = new Set<ReturnType<typeof setTimeout>>();
  readonly #timeoutMs: number;
  readonly #now: () => number;
  readonly #verified = new Map<string, NodeIdentity>();
  #started = false;

  constructor(readonly node: NetNode, private readonly opts: AuthGuardOptions) {
    this.#timeoutMs = opts.authTimeoutMs ?? 10_000;
    this.#now = opts.now ?? Date.now;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.node.addEventListener('connection:open', this.#onOpen);
    this.node.addEventListener('connection:close', this.#onClose);
    await this.node.handle(PROTOCOLS.auth.id, (stream, connection) => this.#answer(stream, connection));
    this.#protocols.push(PROTOCOLS.auth.id);
    for (const c of this.node.getConnections()) this.#onOpen(new CustomEvent('connection:open', { detail: c }));
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    this.node.removeEventListener('connection:open', this.#onOpen);
    this.node.removeEventListener('connection:close', this.#onClose);
    await this.node.unhandle(this.#protocols.splice(0));
    for (const s of this.#states.values()) clearTimeout(s.timer);
    for (const t of this.#graceTimers) clearTimeout(t);
    this.#graceTimers.clear();
    this.#states.clear();
  }

  /** Serve `spec` to authenticated peers whose role it allows. */
  async handle(spec: ProtocolSpec, handler: GuardedHandler): Promise<void> {
    await this.node.handle(spec.id, async (stream, connection) => {
      let peer: NodeIdentity;
      try {
        peer = await this.#identityFor(connection, AbortSignal.timeout(this.#timeoutMs));
        this.#admit(peer, spec);
      } catch (err) {
        this.#refused(connection, spec.id, errorMessage(err));
        stream.abort(err instanceof Error ? err : new AuthError(String(err)));
        return;
      }
      await handler({ stream, connection, peer });
    });
    this.#protocols.push(spec.id);
  }

  /**
   * Open `spec` on a peer (connecting first if needed) once both ends have authenticated. Fails
   * early when this node's own role may not use the protocol.
   */
  async open(target: PeerId | Multiaddr, spec: ProtocolSpec, opts: { signal?: AbortSignal } = {}): Promise<GuardedStream> {
    const own = this.opts.credentials().identity;
    if (!spec.roles.includes(own.role)) {
      throw new AuthError(`this node is a ${own.role}; ${spec.id} is for ${spec.roles.join(' and ')} nodes only`);
    }
    const signal = opts.signal ?? AbortSignal.timeout(this.#timeoutMs);
    const connection = await this.node.dial(target, { signal });
    const peer = await this.#identityFor(connection, signal);
    const stream = await connection.newStream(spec.id, { signal });
    return { stream, connection, peer };
  }

  /**
   * Present this node's current certificate again on every authenticated connection (after a
   * renewal), so that peers hold the new expiry and role. Returns how many peers accepted it; a peer
   * that refuses keeps the identity it had verified before.
   */
  async reauthenticate(): Promise<number> {
    const live = [...this.#states.values()].filter((s) => s.identity && s.connection.status === 'open');
    const results = await Promise.allSettled(live.map(async (s) => {
      const id = await this.#ask(s.connection);
      s.identity = id;
    }));
    return results.filter((r) => r.status === 'fulfilled').length;
  }

  /** Whether `peerId` has an open, authenticated connection and is not removed (for gossip). */
  isAuthenticatedPeer(peerId: string): boolean {
    for (const s of this.#states.values()) {
      if (s.identity?.peerId === peerId && s.connection.status === 'open') return !this.opts.isRemoved?.(s.identity.nodeId);
    }
    return false;
  }

  /** The verified identity on a connection, if it has authenticated. */
  peerOf(connection: Connection): NodeIdentity | null {
    return this.#states.get(connection.id)?.identity ?? null;
  }

  /** A node was removed: close its connections now and refuse its peer id from here on. */
  revoke(nodeId: string): void {
    for (const s of this.#states.values()) {
      if (s.identity?.nodeId !== nodeId) continue;
      this.opts.denyList?.add(s.identity.peerId);
      void s.connection.close().catch(() => s.connection.abort(new AuthError(`node ${nodeId} was removed`)));
    }
  }

  #onOpen = (evt: CustomEvent<Connection>): void => {
    const connection = evt.detail;
    const state = this.#state(connection);
    if (connection.direction === 'outbound') {
      state.exchanging = true;
      void this.#ask(connection).then(
        (id) => this.#settle(state, id),
        (err: unknown) => this.#fail(state, err),
      );
    } else {
      state.timer = setTimeout(() => {
        if (!state.identity) this.#fail(state, new AuthError(`peer ${connection.remotePeer} did not authenticate within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
    }
  };

  #onClose = (evt: CustomEvent<Connection>): void => {
    const s = this.#states.get(evt.detail.id);
    if (!s) return;
    clearTimeout(s.timer);
    this.#states.delete(evt.detail.id);
    if (!s.identity && !s.exchanging) s.result.reject(new ConnClosedError(`connection to ${evt.detail.remotePeer} closed before authenticating`));
  };

  #state(connection: Connection): ConnState {
    let s = this.#states.get(connection.id);
    if (!s) {
      s = { connection, identity: null, exchanging: false, failure: null, result: Promise.withResolvers<NodeIdentity>() };
      s.result.promise.catch(() => {}); // a failure is reported to whoever waits, never unhandled
      this.#states.set(connection.id, s);
    }
    return s;
  }

  #settle(s: ConnState, id: NodeIdentity): void {
    clearTimeout(s.timer);
    s.exchanging = false;
    s.identity = id;
    s.result.resolve(id);
  }

  #fail(s: ConnState, err: unknown): void {
    clearTimeout(s.timer);
    s.exchanging = false;
    if (s.identity) return;
    const connection = s.connection;
    const e = err instanceof Error ? err : new AuthError(String(err));
    s.failure = e;
    s.result.reject(e);
    this.#refused(connection, PROTOCOLS.auth.id, e.message);
    if (connection.direction === 'outbound') {
      void connection.close().catch(() => connection.abort(e));
      return;
    }
    // Closing the connection at once would lose the refusal we just wrote (yamux drops it), so
    // leave the dialer a moment to read it and hang up itself; nothing is served meanwhile.
    const timer = setTimeout(() => {
      this.#graceTimers.delete(timer);
      if (connection.status === 'open') void connection.close().catch(() => connection.abort(e));
    }, REFUSAL_GRACE_MS);
    this.#graceTimers.add(timer);
  }

  /**
   * Wait for a connection's authentication. On an inbound connection whose peer never started it the
   * answer is no at once: a dialer that follows the protocol authenticates before opening anything.
   */
  async #identityFor(connection: Connection, signal: AbortSignal): Promise<NodeIdentity> {
    if (connection.status !== 'open') throw new ConnClosedError(`connection to ${connection.remotePeer} is closed`);
    const s = this.#states.get(connection.id) ?? (connection.direction === 'outbound' ? this.#state(connection) : undefined);
    if (s?.identity) return s.identity;
    if (s?.failure) throw s.failure;
    if (!s || (connection.direction === 'inbound' && !s.exchanging)) {
      throw new AuthError(`peer ${connection.remotePeer} has not authenticated (send a certificate on ${PROTOCOLS.auth.id} first)`);
    }
    const aborted = new Promise<never>((_, reject) => {
      const onAbort = () => reject(new AuthError(`peer ${connection.remotePeer} did not authenticate in time`));
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    aborted.catch(() => {});
    return Promise.race([s.result.promise, aborted]);
  }

  #admit(peer: NodeIdentity, spec: ProtocolSpec): void {
    if (!spec.roles.includes(peer.role)) throw new AuthError(`node ${peer.nodeId} is a ${peer.role}; ${spec.id} is for ${spec.roles.join(' and ')} nodes only`);
    if (this.opts.isRemoved?.(peer.nodeId)) throw new AuthError(`node ${peer.nodeId} was removed from the cluster`);
    if (this.#now() > peer.notAfter) throw new AuthError(`the certificate of node ${peer.nodeId} expired at ${new Date(peer.notAfter).toISOString()}`);
  }

  async #verify(certPem: string, connection: Connection): Promise<NodeIdentity> {
    const creds = this.opts.credentials();
    const key = connection.remotePeer.publicKey;
    if (!key || key.type !== 'Ed25519') throw new AuthError(`peer ${connection.remotePeer} has no Ed25519 key; shoal nodes use Ed25519 identities`);
    const now = this.#now();
    const cacheKey = `${creds.clusterId}\n${creds.trust.digests.join(',')}\n${certPem}`;
    let id = this.#verified.get(cacheKey);
    if (id && (now < id.notBefore || now > id.notAfter || id.peerId !== connection.remotePeer.toString())) id = undefined; // checked afresh: it says why
    if (id) id = { ...id };
    else {
      id = await (this.opts.verify ?? verifyNodeCert)(certPem, {
        trust: creds.trust, clusterId: creds.clusterId, peerPublicKey: key.raw, now,
        what: `the certificate of peer ${connection.remotePeer}`,
      });
      this.#verified.delete(cacheKey);
      if (this.#verified.size >= VERIFIED_MAX) this.#verified.delete(this.#verified.keys().next().value!);
      this.#verified.set(cacheKey, { ...id });
    }
    if (this.opts.isRemoved?.(id.nodeId)) throw new AuthError(`node ${id.nodeId} was removed from the cluster: join it again with a token, as a new node`);
    return id;
  }

  /** Dialer side: send our certificate, verify the one that comes back. */
  async #ask(connection: Connection): Promise<NodeIdentity> {
    const stream = await connection.newStream(PROTOCOLS.auth.id, { signal: AbortSignal.timeout(this.#timeoutMs) });
    const ch = new FrameChannel(new StreamConn(stream, connection), AUTH_SCHEMA);
    const reply = nextMessage(ch, this.#timeoutMs, `authentication with peer ${connection.remotePeer}`);
    ch.send({ t: 'hello', b: { cert: this.opts.credentials().identity.certPem } });
    const m = await reply;
    if (m.t === 'refuse') {
      ch.close('refused');
      throw new AuthRefusedError(`peer ${connection.remotePeer} refused this node: ${m.b.reason}`);
    }
    try {
      const id = await this.#verify(m.b.cert, connection);
      ch.close('authenticated');
      return id;
    } catch (err) {
      ch.send({ t: 'refuse', b: { reason: errorMessage(err).slice(0, 2048) } });
      ch.close('refused');
      throw err;
    }
  }

  /** Listener side: verify the dialer's certificate, answer with ours or with the reason we refuse. */
  async #answer(stream: Stream, connection: Connection): Promise<void> {
    const state = this.#state(connection);
    state.exchanging = true;
    const ch = new FrameChannel(new StreamConn(stream, connection), AUTH_SCHEMA);
    let m: Message<AuthMessages>;
    try {
      m = await nextMessage(ch, this.#timeoutMs, `authentication of peer ${connection.remotePeer}`);
    } catch (err) {
      this.#fail(state, err);
      return;
    }
    if (m.t !== 'hello') {
      ch.close('expected hello');
      this.#fail(state, new AuthError(`peer ${connection.remotePeer} refused this node: ${m.b.reason}`));
      return;
    }
    let id: NodeIdentity;
    try {
      id = await this.#verify(m.b.cert, connection);
    } catch (err) {
      ch.send({ t: 'refuse', b: { reason: errorMessage(err).slice(0, 2048) } });
      await stream.close({ signal: AbortSignal.timeout(this.#timeoutMs) }).catch(() => {});
      this.#fail(state, err);
      return;
    }
    this.#settle(state, id);
    ch.send({ t: 'hello', b: { cert: this.opts.credentials().identity.certPem } });
    ch.close('authenticated');
  }

  #refused(connection: Connection, protocol: string, reason: string): void {
    this.opts.onRefused?.({ peerId: connection.remotePeer.toString(), protocol, reason });
  }
}

/** The next message on a channel; rejects when it closes first or nothing comes within the bound. */
export function nextMessage<M>(ch: FrameChannel<M>, timeoutMs: number, what: string): Promise<Message<M>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ch.close('timed out');
      reject(new AuthError(`${what}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    ch.onMessage((m) => {
      clearTimeout(timer);
      resolve(m);
    });
    ch.onClose((reason) => {
      clearTimeout(timer);
      reject(new ConnClosedError(`${what}: closed before an answer (${reason})`));
    });
  });
}
