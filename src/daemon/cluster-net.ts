/**
 * The daemon's side of the network: one libp2p listener per host, the AuthGuard over it, and what
 * this host serves on it by role. A manager serves join, renewal, raft and the dispatcher (the
 * dispatcher only while it leads; followers refuse sessions so workers move on to the leader). A
 * worker serves nothing and dials managers. Loaded on demand, so a one-host daemon's API is up
 * before libp2p is.
 */
import 'reflect-metadata'; // before anything loads @peculiar/x509 (its DI container checks at import time)
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import type { Ed25519PrivateKey } from '@libp2p/interface';
import { errorMessage, UnavailableError } from '../lib/errors.ts';
import { FrameChannel, type Conn } from '../manager/dispatcher/conn.ts';
import { SESSION_FRAMES } from '../manager/dispatcher/protocol.ts';
import { caEpochOfDigests, ClusterTrust, type JoinRequest, type NodeIdentity, verifyNodeCert } from '../manager/ca/index.ts';
import { AuthGuard, type LocalCredentials } from '../net/auth.ts';
import { dispatcherConnector, serveDispatcher } from '../net/dispatcher.ts';
import { loadOrCreateNodeKey, type NodeKeyStore } from '../net/identity.ts';
import { type JoinAnswer, type Joined, requestJoin, serveJoin } from '../net/join.ts';
import { createNetNode, type NetNode, PeerDenyList } from '../net/node.ts';
import { Libp2pRaftTransport } from '../net/raft-transport.ts';
import { requestRenewal, serveRenewal } from '../net/renew.ts';
import { type IssuedServerCert, requestServerCert, type ServerCertRequest, serveServerCert } from '../net/server-cert.ts';
import { PROTOCOLS } from '../net/protocols.ts';
import type { LateTransport } from '../raft-host/late-transport.ts';
import type { NodeId } from '../raft/index.ts';
import { type HostPort, type Membership, parseHostPort, toMultiaddrString } from './membership.ts';

export interface ClusterNetOptions {
  dataDir: string;
  /** How node.key is read and written (sealed on an autolocked manager); in the clear when absent. */
  nodeKeys?: NodeKeyStore;
  listen: HostPort;
  advertise: HostPort;
  isRemoved: (nodeId: string) => boolean;
  log: (msg: string) => void;
}

export interface ManagerServices {
  selfId: NodeId;
  transport: LateTransport;
  /** Where a raft peer listens (IP:PORT), from the store or what this host remembers; null if unknown. */
  addrOf: (nodeId: NodeId) => string | null;
  /** Admit a joiner (check its token, issue its certificate, record the node). */
  admit: (req: JoinRequest) => Promise<JoinAnswer>;
  /** Issue a fresh certificate for an authenticated node, with the role the cluster holds for it now, and the roots to trust. */
  renew: (peer: NodeIdentity, publicKey: Uint8Array) => Promise<{ identity: NodeIdentity; trustPem?: string }>;
  /** Issue a TLS server certificate for a node's --metrics-addr listener (metrics-cert.ts). */
  issueServerCert: (peer: NodeIdentity, req: ServerCertRequest) => Promise<{ certPem: string; hosts: string[] }>;
  /** The dispatcher, while this manager leads; null on a follower. */
  dispatcher: () => { accept(conn: Conn, opts: { nodeId?: string }): void } | null;
  /** Who leads, for a follower's refusal. */
  leaderAddr: () => string | null;
  /** The raft voters now (this host among them): each keeps a link to every other (keepLinks). */
  raftVoters: () => NodeId[];
}

/** How often a manager checks that it has a raft link to every other voter. */
const KEEP_LINKS_MS = 1_000;

export class ClusterNet {
  #creds: LocalCredentials | null = null;
  #raft: Libp2pRaftTransport | null = null;
  #keepLinks: ReturnType<typeof setInterval> | null = null;
  #stopped = false;
  /** Whether a node was removed from the cluster; the daemon sets it once it has a store to ask. */
  isRemoved: (nodeId: string) => boolean;

  private constructor(
    readonly node: NetNode,
    readonly guard: AuthGuard,
    readonly key: Ed25519PrivateKey,
    private readonly opts: ClusterNetOptions,
  ) {
    this.isRemoved = opts.isRemoved;
  }

  /** Start listening. The guard starts once this host has credentials (after a join, or at once). */
  static async start(opts: ClusterNetOptions): Promise<ClusterNet> {
    const key = await loadOrCreateNodeKey(opts.dataDir, opts.nodeKeys);
    // Removed nodes are refused at authentication (isRemoved, fed from the store), not by the
    // connection gater: a peer cut off before TLS completes sees only "EOF", while one refused
    // at authentication hears that it was removed and what to do. `revoke` still closes its
    // connections at once.
    const denyList = new NamingDenyList();
    let guard: AuthGuard | null = null;
    const node = await createNetNode({
      privateKey: key,
      listen: [toMultiaddrString(opts.listen)],
      announce: [toMultiaddrString(opts.advertise)],
      denyList,
      gossipTrust: (p) => guard?.isAuthenticatedPeer(p) ?? false,
    });
    let net: ClusterNet | null = null;
    guard = new AuthGuard(node, {
      credentials: () => {
        const creds = net ? net.#creds : null;
        if (!creds) throw new UnavailableError('this node has no cluster certificate yet');
        return creds;
      },
      isRemoved: (id) => (net ? net.isRemoved(id) : false),
      denyList,
      onRefused: (e) => opts.log(`net: refused peer ${e.peerId} on ${e.protocol}: ${e.reason}`),
    });
    net = new ClusterNet(node, guard, key, opts);
    try {
      await node.start();
    } catch (err) {
      throw new UnavailableError(`cannot listen for other nodes on ${opts.listen.host}:${opts.listen.port} (${errorMessage(err)}): pick a free one with --listen-addr IP:PORT`);
    }
    return net;
  }

  /** Ask the manager at `addr` to admit this host with `token`; verifies everything it is offered. */
  join(addr: string, token: string): Promise<Joined> {
    const at = parseHostPort('--join', addr, '127.0.0.1');
    return requestJoin(this.node, multiaddr(toMultiaddrString(at)), token, { advertiseAddr: `${this.opts.advertise.host}:${this.opts.advertise.port}` });
  }

  /** Use this host's certificate from here on (read afresh for every handshake). */
  async authenticate(m: Membership): Promise<void> {
    const trust = await ClusterTrust.fromPem(m.RootCA, 'the pinned root CA in cluster.json');
    const identity = await verifyNodeCert(m.Cert, { trust, clusterId: m.ClusterID, what: "this node's certificate in cluster.json" });
    this.#creds = { clusterId: m.ClusterID, trust, identity };
    await this.guard.start();
  }

  get identity(): NodeIdentity | null {
    return this.#creds?.identity ?? null;
  }

  /** The roots this host trusts, as the dispatcher's heartbeat acks name the cluster's (src/manager/ca/epoch.ts). */
  get caEpoch(): string | null {
    return this.#creds ? caEpochOfDigests(this.#creds.trust.digests) : null;
  }

  async serveManager(s: ManagerServices): Promise<void> {
    const raft = new Libp2pRaftTransport(this.guard, {
      selfId: s.selfId,
      locate: (id) => {
        const a = s.addrOf(id);
        return a ? maddr(a) : null;
      },
    });
    await raft.start();
    this.#raft = raft;
    s.transport.attach(raft);
    raft.keepLinks(s.raftVoters());
    this.#keepLinks = setInterval(() => raft.keepLinks(s.raftVoters()), KEEP_LINKS_MS);
    await serveJoin(this.node, {
      answer: s.admit,
      onRefused: (e) => this.opts.log(`net: refused to admit peer ${e.peerId}: ${e.reason}`),
    });
    await serveRenewal(this.guard, s.renew);
    await serveServerCert(this.guard, s.issueServerCert);
    await serveDispatcher(this.guard, {
      accept: (conn, o) => {
        const d = s.dispatcher();
        if (d) return d.accept(conn, o);
        const leader = s.leaderAddr();
        const ch = new FrameChannel(conn, SESSION_FRAMES);
        const message = `this manager is not the raft leader${leader ? `; the leader is at ${leader}` : ''}`;
        ch.send({ t: 'session.error', b: { code: 'shutting-down', message, ...(leader ? { leader } : {}) } });
        ch.close(message);
      },
    });
  }

  /** This host was demoted: stop serving what only managers serve. */
  async stopManager(): Promise<void> {
    if (this.#keepLinks) clearInterval(this.#keepLinks);
    this.#keepLinks = null;
    await this.#raft?.stop();
    this.#raft = null;
    await this.node.unhandle([PROTOCOLS.join.id, PROTOCOLS.raft.id, PROTOCOLS.renew.id, PROTOCOLS.serverCert.id, PROTOCOLS.dispatcher.id]).catch(() => {});
  }

  /** A new certificate for this host from a manager (renewal, a role change), then shown to its peers. */
  async renewFrom(managerAddr: string, m: Membership): Promise<string> {
    const target = maddr(managerAddr);
    if (!target || !this.#creds) throw new UnavailableError(`cannot renew this node's certificate through ${managerAddr}`);
    const { identity, trust } = await requestRenewal(this.guard, target, this.#creds);
    await this.adopt(identity, m, trust.digests.join() === this.#creds.trust.digests.join() ? undefined : trust.pem);
    return identity.role;
  }

  /** A TLS server certificate for this host's --metrics-addr listener, from the manager at `managerAddr`. */
  async serverCertFrom(managerAddr: string, req: ServerCertRequest): Promise<IssuedServerCert> {
    const target = maddr(managerAddr);
    if (!target || !this.#creds) throw new UnavailableError(`cannot ask ${managerAddr} for a server certificate`);
    return requestServerCert(this.guard, target, this.#creds, req);
  }

  /**
   * Use `id` (a certificate for this host's key, already checked) from now on, and `trustPem` as
   * the roots to trust when given (a root rotation: the old and the new root, then the new alone).
   */
  async adopt(id: NodeIdentity, m: Membership, trustPem?: string): Promise<void> {
    if (!this.#creds) throw new UnavailableError('this node has no cluster certificate yet');
    const trust = trustPem ? await ClusterTrust.fromPem(trustPem, 'the roots a manager sent') : this.#creds.trust;
    const checked = await verifyNodeCert(id.certPem, { trust, clusterId: this.#creds.clusterId, peerPublicKey: this.key.publicKey.raw, what: 'the renewed certificate' });
    this.#creds = { ...this.#creds, trust, identity: checked };
    m.Cert = checked.certPem;
    if (trustPem) m.RootCA = trustPem;
    await this.guard.reauthenticate();
  }

  /**
   * The worker session's `connect`: managers in the given order (IP:PORT); `report` learns which
   * one answered, or null when none did.
   */
  connector(candidates: () => string[], report?: (answered: string | null) => void): (signal: AbortSignal) => Promise<Conn> {
    let tried: { addr: string; m: Multiaddr }[] = [];
    return dispatcherConnector(
      this.guard,
      () => {
        tried = candidates().flatMap((addr) => {
          const m = maddr(addr);
          return m ? [{ addr, m }] : [];
        });
        return tried.map((t) => t.m);
      },
      report && ((answered) => report(answered === null ? null : tried[answered]?.addr ?? null)),
    );
  }

  /** A removed node: close its connections and refuse its peer from now on. */
  revoke(nodeId: string): void {
    this.guard.revoke(nodeId);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#keepLinks) clearInterval(this.#keepLinks);
    this.#keepLinks = null;
    await this.#raft?.stop().catch(() => {});
    await this.guard.stop().catch(() => {});
    try {
      await this.node.stop();
    } catch {}
  }
}

function maddr(addr: string): Multiaddr | null {
  try {
    return multiaddr(toMultiaddrString(parseHostPort('address', addr, '127.0.0.1')));
  } catch {
    return null;
  }
}

/** A deny list that refuses nothing at the connection level (see ClusterNet.start). */
class NamingDenyList extends PeerDenyList {
  override add(_peerId: string): void {}
}
