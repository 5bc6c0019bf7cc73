/**
 * The data model, in the Docker Engine API's swarm-mode shapes (PascalCase, durations in
 * nanoseconds, `Version.Index` for optimistic concurrency). One model serves our CLI, the docker CLI
 * and the web UI, and is what the store keeps.
 */
import type { TaskState } from './task-state.ts';

/** Where a secret's or config's file goes in the task, as Docker's `SecretReferenceFileTarget`. UID/GID are strings, as Docker's. */
export interface FileTarget { Name: string; UID?: string; GID?: string; Mode?: number }

/** One secret a task receives (`ContainerSpec.Secrets[]` in Docker; also ProcessSpec/VMSpec/MockSpec here). */
export interface SecretReference { File?: FileTarget; SecretID: string; SecretName: string }
export interface ConfigReference { File?: FileTarget; ConfigID: string; ConfigName: string }

export interface Version { Index: number }

export interface Meta {
  ID: string;
  Version: Version;
  CreatedAt: string;
  UpdatedAt: string;
}

export type Labels = Record<string, string>;

// ---------------------------------------------------------------- resources, placement, restart

export interface ResourceValues { NanoCPUs?: number; MemoryBytes?: number }
export interface ResourceRequirements { Limits?: ResourceValues; Reservations?: ResourceValues }

export interface Placement { Constraints?: string[] }

export type RestartCondition = 'none' | 'on-failure' | 'any';
export interface RestartPolicy {
  Condition?: RestartCondition; // default 'any'
  Delay?: number;               // ns, default 5s
  MaxAttempts?: number;         // 0 = unlimited
  Window?: number;              // ns, 0 = unbounded
}

// ---------------------------------------------------------------- runtime specs

/** Docker's ContainerSpec (subset used so far; the container executor extends it). */
export interface ContainerSpec {
  Image: string;
  Command?: string[];
  Args?: string[];
  Env?: string[];
  Dir?: string;
  User?: string;
  Labels?: Labels;
  StopSignal?: string;
  StopGracePeriod?: number; // ns
  Hostname?: string;
  /** Run an init (docker-init) as PID 1, which forwards signals and reaps zombies. */
  Init?: boolean;
  Mounts?: Mount[];
  /** Overrides the image's HEALTHCHECK; `Test: ["NONE"]` disables it. */
  Healthcheck?: HealthConfig;
  Secrets?: SecretReference[];
  Configs?: ConfigReference[];
  [k: string]: unknown;
}

/** Docker's mount shape (`ContainerSpec.Mounts[]`). */
export interface Mount {
  Type: 'bind' | 'volume' | 'tmpfs';
  /** Host path (bind), volume name (volume; absent = anonymous), absent for tmpfs. */
  Source?: string;
  Target: string;
  ReadOnly?: boolean;
  VolumeOptions?: { NoCopy?: boolean; Labels?: Labels };
  TmpfsOptions?: { SizeBytes?: number; Mode?: number };
}

/** Docker's health check shape; durations in ns, 0 = the engine's default. */
export interface HealthConfig {
  /** `[]` inherit the image's, `["NONE"]` none, `["CMD", prog, args…]`, `["CMD-SHELL", script]`. */
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  Retries?: number;
  StartPeriod?: number;
  /** Time between checks during StartPeriod (API 1.44+). */
  StartInterval?: number;
}

/** A plain process: `TaskTemplate.Runtime = "process"`. */
export interface ProcessSpec {
  Command: string[];        // program followed by its arguments
  Env?: string[];           // KEY=VALUE
  Dir?: string;
  User?: string;            // name, uid, uid:gid or name:group
  /** Supplementary groups (names or gids), added to the user's own from /etc/group. Root only. */
  Groups?: string[];
  StopSignal?: string;      // default SIGTERM
  StopGracePeriod?: number; // ns, default 10s
  /** Run on the host by the worker (in the task's network namespace when it has one); see executor/health. */
  Healthcheck?: HealthConfig;
  /** Optional namespaces (root only): own PIDs (the program is PID 1), mounts, loopback-only network. */
  Isolation?: ProcessIsolation;
  /** Files in a per-task tmpfs: `$SHOAL_SECRETS_DIR/<File.Name>` (see docs/api.md). */
  Secrets?: SecretReference[];
  /** Files in a per-task tmpfs: `$SHOAL_CONFIGS_DIR/<File.Name>`. */
  Configs?: ConfigReference[];
}

export interface ProcessIsolation { Pid?: boolean; Mount?: boolean; Network?: boolean }

/** The mock executor, for tests and simulation: `TaskTemplate.Runtime = "mock"`. */
export interface MockSpec {
  RunFor?: number;          // ns the task "runs"; absent = until stopped
  ExitCode?: number;        // exit code when RunFor elapses (default 0)
  StartError?: string;      // start fails with this message
  PrepareError?: string;    // prepare fails with this message
  IgnoreStop?: boolean;     // ignore the stop signal (only the kill after the grace period ends it)
  StopGracePeriod?: number; // ns
  Secrets?: SecretReference[];
  Configs?: ConfigReference[];
}

/**
 * A microVM (QEMU `microvm`): `TaskTemplate.Runtime = "vm"`. Kernel (with an optional Initrd) or
 * Disk is required. vCPUs and memory come from `Resources.Limits` (default 1 vCPU, 128 MiB).
 */
export interface VMSpec {
  Kernel?: string;          // host path of the guest kernel (bzImage / vmlinuz)
  Initrd?: string;          // host path of an initramfs; only with Kernel
  Disk?: string;            // host path of a raw disk image, attached as virtio-blk (/dev/vda)
  Cmdline?: string;         // appended to the kernel command line
  StopGracePeriod?: number; // ns, default 10s
  /** Run on the host by the worker (the guest is reached over its network); see executor/health. */
  Healthcheck?: HealthConfig;
  /** Given to the guest as a read-only tar archive on a virtio-blk disk (see docs/api.md). */
  Secrets?: SecretReference[];
  Configs?: ConfigReference[];
}

export type Runtime = 'container' | 'process' | 'vm' | 'mock' | (string & {});

export interface TaskSpec {
  Runtime?: Runtime;        // default: 'container' when ContainerSpec is given, else 'process'
  ContainerSpec?: ContainerSpec;
  ProcessSpec?: ProcessSpec;
  VMSpec?: VMSpec;
  MockSpec?: MockSpec;
  /** A third-party executor's own spec, keyed by its runtime name. */
  PluginSpec?: Record<string, unknown>;
  Resources?: ResourceRequirements;
  RestartPolicy?: RestartPolicy;
  Placement?: Placement;
  ForceUpdate?: number;
  /** Overlay networks the tasks join; `Target` is the network's ID (the API resolves names). */
  Networks?: NetworkAttachmentConfig[];
}

export interface NetworkAttachmentConfig { Target: string; Aliases?: string[]; DriverOpts?: Record<string, string> }

// ---------------------------------------------------------------- services

export interface ServiceMode {
  Replicated?: { Replicas?: number };
  Global?: Record<string, never>;
  /** A job: tasks run to completion, `MaxConcurrent` at a time, until `TotalCompletions` completed. */
  ReplicatedJob?: { MaxConcurrent?: number; TotalCompletions?: number };
  /** A job: one task to completion on every eligible node. */
  GlobalJob?: Record<string, never>;
}

/** A job's run: which iteration is current (its tasks carry the same `JobIteration`), and when it began. */
export interface JobStatus {
  JobIteration: Version;
  LastExecution?: string;
}

export interface UpdateConfig {
  Parallelism?: number;
  Delay?: number;
  FailureAction?: 'pause' | 'continue' | 'rollback';
  Monitor?: number;
  MaxFailureRatio?: number;
  Order?: 'stop-first' | 'start-first';
}

export interface PortConfig {
  Name?: string;
  Protocol?: 'tcp' | 'udp';
  TargetPort: number;
  PublishedPort?: number;
  PublishMode?: 'ingress' | 'host';
}

export interface EndpointSpec { Mode?: 'vip' | 'dnsrr'; Ports?: PortConfig[] }

export interface ServiceSpec {
  Name: string;
  Labels?: Labels;
  TaskTemplate: TaskSpec;
  Mode?: ServiceMode;
  UpdateConfig?: UpdateConfig;
  RollbackConfig?: UpdateConfig;
  EndpointSpec?: EndpointSpec;
}

/** Where a rolling update (or rollback) is: Docker's `UpdateStatus`; written by the orchestrator. */
export type UpdateState = 'updating' | 'paused' | 'completed' | 'rollback_started' | 'rollback_paused' | 'rollback_completed';

export interface UpdateStatus {
  State?: UpdateState;
  StartedAt?: string;
  CompletedAt?: string;
  Message?: string;
}

export interface Service extends Meta {
  Spec: ServiceSpec;
  /** The spec before the last update: what a rollback goes back to. */
  PreviousSpec?: ServiceSpec;
  UpdateStatus?: UpdateStatus;
  Endpoint?: { Spec?: EndpointSpec; Ports?: PortConfig[]; VirtualIPs?: { NetworkID: string; Addr: string }[] };
  /** Jobs only: the current iteration; an update of a job starts a new one. */
  JobStatus?: JobStatus;
}

// ---------------------------------------------------------------- tasks

export interface TaskStatus {
  Timestamp: string;
  State: TaskState;
  Message: string;
  Err?: string;
  ContainerStatus?: { ContainerID?: string; PID?: number; ExitCode?: number };
  /** Why a task is not placed yet (scheduler explanation); our addition, shown by `service ps`. */
  PortStatus?: Record<string, unknown>;
}

export interface Task extends Meta {
  Name?: string;
  Labels?: Labels;
  Spec: TaskSpec;
  ServiceID: string;
  /** Replicated services: slot number from 1. Global services: 0 (the node identifies the slot). */
  Slot: number;
  NodeID: string;
  Status: TaskStatus;
  DesiredState: TaskState;
  /** The service's Version.Index when this task was made; an update makes new tasks. */
  ServiceVersion?: number;
  /** Restart bookkeeping: how many times this slot has been restarted, and when. */
  RestartAttempts?: number;
  /**
   * The restart policy decided this slot is finished (e.g. `none` after an exit): the task is desired
   * `shutdown` and its slot stays empty until the service changes (our addition).
   */
  SlotDone?: boolean;
  /** The task's address on each of its networks, set by the allocator (Docker's shape). */
  NetworksAttachments?: NetworkAttachment[];
  /** Jobs only: the service's `JobStatus.JobIteration` when this task was made. */
  JobIteration?: Version;
}

/** One network of a task: the network as it was when allocated, and the task's address(es) on it. */
export interface NetworkAttachment {
  Network: { ID: string; Spec: { Name: string; Labels?: Labels }; DriverState: { Name: string; Options: Record<string, string> }; IPAMOptions: { Configs: IPAMConfig[] } };
  /** `10.0.1.5/24`: the address with its network's prefix length. */
  Addresses: string[];
}

// ---------------------------------------------------------------- networks

export interface IPAMConfig { Subnet: string; Gateway?: string }

/** Docker's driver option carrying an overlay network's VXLAN id (in attachments and `/networks`). */
export const VXLAN_OPTION = 'com.docker.network.driver.overlay.vxlanid_list';

/** What the user asked for (`POST /networks/create`). */
export interface NetworkSpec {
  Name: string;
  Labels?: Labels;
  Driver: 'overlay';
  /** Empty: the allocator gives the network a subnet from the default pool. */
  IPAM: { Config: IPAMConfig[] };
  Internal?: boolean;
  Attachable?: boolean;
}

/** An overlay network (swarm scope). The API presents it in Docker's NetworkResource shape. */
export interface Network extends Meta {
  Spec: NetworkSpec;
  /** Set by the allocator: the subnet and gateway in use (the asked-for one, or one from the pool). */
  IPAM?: { Config: IPAMConfig[] };
  /** Set by the allocator: the VXLAN network identifier, unique in the cluster. */
  VNI?: number;
}

// ---------------------------------------------------------------- nodes

export type NodeRole = 'manager' | 'worker';
export type NodeAvailability = 'active' | 'pause' | 'drain';
export type NodeState = 'unknown' | 'down' | 'ready' | 'disconnected';

export interface NodeSpec {
  Name?: string;
  Labels?: Labels;
  Role: NodeRole;
  Availability: NodeAvailability;
}

export interface EnginePlugin { Type: string; Name: string }

export interface NodeDescription {
  Hostname: string;
  Platform: { Architecture: string; OS: string };
  Resources: { NanoCPUs: number; MemoryBytes: number };
  Engine: { EngineVersion: string; Labels?: Labels; Plugins: EnginePlugin[] };
  /** Runtimes this node can run right now, with health, from executor fingerprints (our addition). */
  Runtimes?: { Name: string; Healthy: boolean; Message?: string }[];
  /** Where other hosts reach this host's published ports and host-network tasks (our addition: its `--mesh-addr` or advertised IP). */
  Addr?: string;
  /**
   * What this node's build can do that an older one could not (our addition), such as
   * "task-patch": its store applies task updates written as what changed (src/store/patch.ts).
   */
  Features?: string[];
  /**
   * The node's current certificate, written by the manager that issued it: Docker's `TrustRoot`
   * and `CertIssuerSubject`, `CertIssuerPublicKey` (DER, base64); ours: `CertSerial` (hex), `CertNotBefore`, `CertNotAfter` (RFC 3339).
   */
  TLSInfo?: { TrustRoot?: string; CertIssuerSubject?: string; CertIssuerPublicKey?: string; CertSerial?: string; CertNotBefore?: string; CertNotAfter?: string; PeerID?: string };
}

export interface NodeStatus { State: NodeState; Message?: string; Addr?: string }

export interface ManagerStatus { Leader?: boolean; Reachability: 'unknown' | 'unreachable' | 'reachable'; Addr: string }

export interface Node extends Meta {
  Spec: NodeSpec;
  Description: NodeDescription;
  Status: NodeStatus;
  ManagerStatus?: ManagerStatus;
  /** Where the node listens for other nodes (IP:PORT), as it said when it joined (our addition): a promoted worker's raft address. */
  AdvertiseAddr?: string;
}

// ---------------------------------------------------------------- cluster

export interface ClusterSpec {
  Name: string;
  Labels?: Labels;
  Orchestration: { TaskHistoryRetentionLimit: number };
  Raft: { SnapshotInterval: number; ElectionTick: number; HeartbeatTick: number };
  Dispatcher: { HeartbeatPeriod: number }; // ns
  CAConfig: CAConfig;
  /** Docker's: `AutoLockManagers` locks a restarted manager until `swarm unlock` (src/daemon/keys-at-rest.ts). */
  EncryptionConfig?: { AutoLockManagers: boolean };
  /**
   * How many managers the leader keeps (our addition; Docker has no such field and ignores it).
   * Absent or `Desired` 0: automatic, min(3, nodes) rounded down to odd. See docs/api.md.
   */
  Managers?: ManagersSpec;
}

/** Docker's `Spec.CAConfig`. */
export interface CAConfig {
  NodeCertExpiry: number; // ns
  /** Raised by one to rotate the root CA (`docker swarm ca --rotate`); kept as the last value asked. */
  ForceRotate?: number;
  /** The root certificate (PEM) last rotated to by hand (`--ca-cert`); the key is never kept in the spec. */
  SigningCACert?: string;
  /** cfssl servers that sign for the root (`--external-ca protocol=cfssl,url=…`). */
  ExternalCAs?: ExternalCA[];
}

export interface ExternalCA {
  Protocol: 'cfssl';
  URL: string;
  Options?: Record<string, string>;
  /** The root the server signs for (PEM); empty: the cluster's current root. */
  CACert?: string;
}

export interface ManagersSpec {
  /** Managers wanted: 0 = automatic; otherwise rounded down to odd, at most 7 (and the node count). */
  Desired?: number;
  /** How long a manager is down or unreachable before a worker replaces it (ns; default 30 s). */
  LostGracePeriod?: number;
  /** The node label (Spec.Labels) naming a node's failure domain (default `failure-domain`). */
  FailureDomainLabel?: string;
}

export interface Cluster extends Meta {
  Spec: ClusterSpec;
  JoinTokens: { Worker: string; Manager: string };
  /**
   * The cluster's root CA as swarmkit keeps it in its store: the certificate, its digest (the one in
   * join tokens) and the signing key, which every manager needs to admit nodes. The API never shows
   * the key (GET /swarm has `TLSInfo.TrustRoot` instead).
   */
  RootCA?: RootCAState;
  /** Nodes removed from the cluster: refused at once by every manager, even with a valid certificate. */
  RemovedNodes?: string[];
  /**
   * Client bundles issued for the admin API over TCP (our addition; `shoal ca ls`). One with
   * `RevokedAt` is refused by every manager; records are dropped once their certificate expired.
   */
  ClientCerts?: ClientCertRecord[];
  /**
   * Autolock's unlock key (`SWMKEY-1-…`), present while `Spec.EncryptionConfig.AutoLockManagers`
   * is on (our internal field: swarmkit keeps it as the manager KEK in its cluster object). Every
   * manager seals its raft data key and node key under it; backups are encrypted with it. Never
   * shown by GET /swarm: only `GET /swarm/unlockkey` to an admin client, and at the update that
   * turned autolock on.
   */
  UnlockKey?: string;
  /** The fleet's rolling self-upgrade, under way or the last one (our addition; `shoal fleet upgrade`). */
  Upgrade?: import('./upgrade.ts').UpgradeRecord;
}

/**
 * `CAKey` is empty when an external CA (cfssl) holds the root's key. `RootRotation`, while a root
 * rotation is under way (swarmkit's): the new root, its key (empty when external) and the new root
 * cross-signed by the current one; it becomes the root once every node holds a certificate from it.
 */
export interface RootCAState {
  CACert: string;
  CAKey: string;
  CACertHash: string;
  RootRotation?: { CACert: string; CAKey: string; CACertHash: string; CrossSignedCACert: string };
  /** The last `Spec.CAConfig.ForceRotate` acted on. */
  LastForcedRotation?: number;
}

export interface ClientCertRecord {
  /** The certificate's serial number, lowercase hex. */
  Serial: string;
  Name: string;
  Role: 'admin' | 'read-only';
  IssuedAt: string;
  NotAfter: string;
  RevokedAt?: string;
}

export const DEFAULT_TASK_HISTORY = 5;
export const NS_PER_MS = 1_000_000;
export const NS_PER_S = 1_000_000_000;
