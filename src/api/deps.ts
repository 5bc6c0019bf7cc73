import type { BackupHeader } from '../backup/format.ts';
import type { LoadReport } from '../executor/loader.ts';
import type { MemoryStore } from '../store/index.ts';
import type { Cluster, ClusterSpec, ExternalCA, RootCAState, Task, TaskSpec, UpgradeRecord } from '../types/index.ts';

export interface LogLine { stream: 'stdout' | 'stderr'; time: number; line: string }

export interface LogRequest { follow: boolean; since?: number; tail?: number; signal: AbortSignal }

export interface InitRequest { ListenAddr?: string; AdvertiseAddr?: string; Spec?: Partial<ClusterSpec> }

/** Docker's SwarmJoinRequest. */
export interface JoinRequestBody { RemoteAddrs: string[]; JoinToken: string; ListenAddr?: string; AdvertiseAddr?: string }

/** What the admin API needs from the daemon. The daemon wires it; tests pass fakes. */
/** This manager's Raft replica as it stands (`GET /raft`): read-only, for the UI and for operators. */
export interface RaftView {
  role: 'leader' | 'follower' | 'candidate' | 'pre-candidate' | string;
  leader: string | null;
  term: number;
  commit: number;
  applied: number;
  lastIndex: number;
  snapshotIndex: number;
  voters: string[];
  learners: string[];
  /** Filled only on the leader: each member's match index and whether it answered recently. */
  progress: Record<string, { match: number; recentActive: boolean; learner: boolean }>;
}

export interface ApiDeps {
  store: MemoryStore;
  /** This host's node id (null before a cluster exists). */
  nodeId(): string | null;
  /** Make a cluster with this host as its first manager; resolves with the node id. Throws 409/503 when already in one. */
  initCluster(req: InitRequest): Promise<string>;
  /** Join the cluster of a manager (Docker's POST /swarm/join); resolves with the node id. Optional: tests omit it. */
  joinCluster?(req: JoinRequestBody): Promise<string>;
  /** Resolves once the cluster's root CA and join tokens exist (they are made in the background at init). */
  identityReady?(): Promise<void>;
  /** Leave the cluster (Docker's POST /swarm/leave); a manager needs `force`. */
  leaveCluster?(force: boolean): Promise<void>;
  /** A new secret for the worker or manager join token. */
  rotateJoinToken?(role: 'worker' | 'manager'): Promise<void>;
  /**
   * The cluster's RootCA after a `Spec.CAConfig` rotation request (a new root cross-signed by the
   * current one, in `RootRotation`), or null when it asks for none; 400 for a bad certificate/key.
   */
  planRootRotation?(cluster: Cluster, req: { forceRotate?: number; certPem?: string; keyPem?: string; externalCAs: ExternalCA[] }): Promise<RootCAState | null>;
  /** A root certificate's issuer fields as Docker's TLSInfo shows them (DER, base64). */
  issuerInfo?(pem: string): Promise<{ CertIssuerSubject: string; CertIssuerPublicKey: string }>;
  /** On a worker: the managers' addresses (cluster-wide requests go there); null on a manager. */
  managersIfWorker?(): string[] | null;
  /**
   * What this host knows without asking the leader: its advertised IP and the managers it remembers
   * (GET /info answers from it when no leader can be reached, or the store has not caught up).
   */
  localView?(): { nodeAddr: string; managers: { NodeID: string; Addr: string }[] };
  /** Runtime-specific checks (the executor catalog): a message naming the problem, or null. */
  validateTaskSpec(spec: TaskSpec): string | null;
  /** A task's log lines; `since` is ms since the epoch, `tail` a line count. */
  taskLogs(task: Task, opts: LogRequest): AsyncIterable<LogLine>;
  /** This host's Raft replica, null when it holds none (a worker, no cluster yet). Optional: tests omit it. */
  raftStatus?(): RaftView | null;
  /** Third-party executors this daemon loaded or failed to load (`GET /plugins`). */
  plugins?(): LoadReport;
  /** Prometheus' text format of this daemon's metrics (`GET /metrics`); tests omit it. */
  metrics?(): Promise<{ contentType: string; body: string }>;
  /** A backup file of the cluster state at one applied raft entry (`POST /swarm/backup`); tests omit it. */
  backup?(signal?: AbortSignal): Promise<{ header: BackupHeader; bytes: Uint8Array }>;
  version: { Version: string; ApiVersion: string; GitCommit?: string; Os: string; Arch: string };
  /** The fleet's rolling self-upgrade (`/shoal/upgrade`); tests omit it. */
  upgrade?: UpgradeApi;
}

/** `shoal fleet upgrade`: start an upgrade (the executable is the body, or fetched from `url`), roll back, or read where it stands. */
export interface UpgradeApi {
  begin(req: { body: ReadableStream<Uint8Array> | null; url?: string; sha256?: string; parallelism?: number }): Promise<UpgradeRecord>;
  rollback(): Promise<UpgradeRecord>;
  status(): UpgradeRecord | null;
}
