/**
 * The executor contract: what a runtime ("process", "mock", "container", a plugin's own) offers the
 * worker. Modelled on Nomad's task-driver contract and swarmkit's `agent/exec` controller.
 *
 * An `Executor` describes a runtime once per node (capabilities, fingerprint, spec validation) and
 * makes one `Controller` per task. A controller is driven only by `driver.ts`, which owns the task's
 * state transitions; controllers never decide task states themselves.
 */
import type { Task, TaskSpec } from '../types/index.ts';

/** What a runtime can do, declared up front so callers never probe by trying. */
export interface ExecutorCapabilities {
  /** `Controller.recover()` re-attaches to work that survived a daemon restart. */
  recover: boolean;
  /** `Controller.stats()` reports usage (cpu, memory). */
  stats: boolean;
  /** `Controller.logs({ follow: true })` streams new lines until the task ends. */
  logsFollow: boolean;
  /** A custom stop signal (`StopSignal`) is honoured. */
  signals: boolean;
  /** The task is isolated from the host (own filesystem/namespaces): containers, VMs; not processes. */
  isolation: boolean;
  /** `ProcessSpec.User`-style identity switching is supported on this host. */
  runAsUser: boolean;
  /** Tasks receive `TaskContext.files` (secrets and configs). Absent/false: such tasks are refused. */
  secrets?: boolean;
}

/** What this host can run with a runtime. The node reports it; the scheduler filters on it. */
export interface Fingerprint {
  healthy: boolean;
  /** Why the runtime is unhealthy, or a note worth showing in `node inspect`. */
  message?: string;
  /** Facts for placement constraints, e.g. `{ "process.version": "...", "process.root": "true" }`. */
  attributes: Record<string, string>;
  resources?: { nanoCPUs: number; memoryBytes: number };
}

/**
 * One overlay network of a task, as this host has set it up (issue 6). The worker has made the
 * network's bridge (with the gateway address and the VXLAN uplink) before the controller is made;
 * the executor only joins the task to it, each runtime its own way:
 * - processes (no namespace of their own): the worker makes a network namespace with the task's
 *   interfaces in it (`TaskNetwork.netns`); the executor runs the task inside it;
 * - containers: a Docker network bound to `bridge`, the container at `address` with `mac`;
 * - VMs: a tap device on `bridge`, the guest told its address on the kernel command line (`ip=`).
 */
export interface TaskNetworkAttachment {
  networkId: string;
  /** The network's name (`shoal network create NAME`). */
  name: string;
  /** The host's Linux bridge of this network (exists when the controller is made). */
  bridge: string;
  /** `10.0.1.0/24` */
  subnet: string;
  /** `10.0.1.1`: the bridge's address on this host, the task's default route and resolver. */
  gateway: string;
  /** `10.0.1.5/24`: the task's address with its prefix length, as the allocator gave it. */
  address: string;
  /** The MAC the task's interface must have (`02:42:` + the address), which the forwarding tables assume. */
  mac: string;
  /** Interface MTU (VXLAN takes 50 bytes of 1500). */
  mtu: number;
}

/** The task's networking, when it is attached to overlay networks. Absent: the host's network. */
export interface TaskNetwork {
  attachments: TaskNetworkAttachment[];
  /** The resolvers the task must use (the embedded DNS as the task reaches it: its first gateway). */
  dns: string[];
  /**
   * For executors without isolation (`capabilities.isolation` false): the path of a network
   * namespace the worker made with the task's interfaces in it (`/run/netns/NAME`); the task must
   * run inside it and see `dns` in its `/etc/resolv.conf`. Absent for isolated executors.
   */
  netns?: string;
  /**
   * Set by the worker. An executor with isolation calls it with the task's main process id as soon
   * as the task's own network namespace exists (a container: once the engine has started it), before
   * waiting for anything else such as a health check, and awaits it: the worker writes the task's
   * service VIP rules into that namespace, so connections to VIPs work from the task's first moments
   * (a task that must reach another service to become healthy can). It never rejects (the worker
   * logs failures) and is idempotent; the worker calls it again when the task reports running, so an
   * executor that does not call it gets the rules from then on. Executors without isolation ignore
   * it (the worker wrote the rules into `netns` before the controller was made).
   */
  started?: (pid: number) => Promise<void>;
}

/** One secret or config file of a task, written by the worker in the task's tmpfs. */
export interface TaskFile {
  kind: 'secret' | 'config';
  id: string;
  /** The object's name. */
  name: string;
  /** `File.Name` of the reference: a plain name, or (containers) a path in the container. */
  target: string;
  /** Where the worker wrote it on the host (on a tmpfs), with `uid`, `gid` and `mode` already set. */
  path: string;
  uid: number;
  gid: number;
  mode: number;
}

/**
 * The task's secrets and configs: a tmpfs of its own on the host (`dir`, mode 0700, owned by root),
 * with `secrets/` and `configs/` in it. The worker unmounts it when the task ends; an executor may
 * keep more of its own there (it is sized with room for an archive of the files), never on disk.
 */
export interface TaskFiles {
  dir: string;
  secretsDir: string;
  configsDir: string;
  files: TaskFile[];
}

/** Per-task context the worker hands to `Executor.controller()`. */
export interface TaskContext {
  /** The task's overlay networks as set up on this host; absent when it has none. */
  network?: TaskNetwork;
  /** A directory the worker created for this task under the data dir (logs, pid and exit files). */
  taskDir: string;
  /** Extra environment the worker injects (service discovery, task identity…); the spec's Env wins. */
  env?: Record<string, string>;
  /** Operational log of the executor about this task (not the task's own output). */
  log: (msg: string) => void;
  /** The task's secrets and configs (only for executors with `capabilities.secrets`); absent when it uses none. */
  files?: TaskFiles;
}

export interface ExitStatus {
  /** The process's exit code; 128+N when killed by signal N (Docker's convention). */
  exitCode: number;
  /** Set when the work was ended by a signal, e.g. "SIGKILL". */
  signal?: string;
  /** Human summary: "exit code 3", "killed by SIGKILL". */
  message: string;
}

export interface LogLine {
  stream: 'stdout' | 'stderr';
  /** ms since the epoch when the line was produced. */
  time: number;
  /** The text without its trailing newline. */
  line: string;
}

export interface LogOptions {
  /** Keep streaming new lines until the task ends or `signal` aborts. */
  follow?: boolean;
  /** Only lines with `time >= since` (ms epoch). */
  since?: number;
  /** Only the last `tail` lines of what exists now (before following). */
  tail?: number;
  signal?: AbortSignal;
}

export interface TaskStats {
  /** CPU time used so far, user + system, over the whole task (process group, container…). */
  cpuNanos?: number;
  /** Resident memory now. */
  memoryBytes?: number;
  pid?: number;
}

/**
 * One task's work. Every method may be called on a fresh instance after a daemon restart (after
 * `recover()`), so implementations keep what they need in `TaskContext.taskDir`, not only in memory.
 */
export interface Controller {
  /** Make everything ready to start (directories, images, users…). Throws `PrepareError`. */
  prepare(signal: AbortSignal): Promise<void>;
  /** Start the work and return once it is running. Throws `StartError`. */
  start(signal: AbortSignal): Promise<void>;
  /**
   * Resolve when the work ends, with how it ended. Aborting `signal` only stops waiting; the work
   * goes on (the driver aborts it when the desired state changes, then calls `stop`).
   */
  wait(signal: AbortSignal): Promise<ExitStatus>;
  /**
   * Ask the work to end (the stop signal), wait up to `graceMs`, then kill it and everything it
   * spawned. Idempotent; a no-op before `start` or after the work ended.
   */
  stop(graceMs: number): Promise<void>;
  /** Release everything the task holds on the node (stops it first if needed). Idempotent. */
  remove(): Promise<void>;
  /**
   * Re-attach to work started by an earlier daemon instance, without restarting it. True when this
   * controller is attached again — the work is still running, or it ended while the daemon was
   * down and its exit status was recorded, which `wait()` then reports. False when there is nothing
   * to re-attach to.
   */
  recover(): Promise<boolean>;
  logs(opts?: LogOptions): AsyncIterable<LogLine>;
  stats(): Promise<TaskStats>;
  /**
   * Optional: the task's main process id, cheaper than `stats()` (which may ask a runtime for
   * usage figures). The driver reports it when the task starts; without it, `stats().pid` is used.
   */
  pid?(): Promise<number | undefined>;
  /**
   * Optional: the address at which this host reaches the task: its first overlay address, or for a
   * container its address on Docker's default bridge; undefined for tasks on the host's network.
   * A bare IPv4 address ("10.0.1.5"), without prefix length.
   */
  address?(): Promise<string | undefined>;
}

export interface Executor {
  /** The runtime name, as in `TaskSpec.Runtime`: "process", "mock"… */
  readonly name: string;
  readonly capabilities: ExecutorCapabilities;
  fingerprint(signal?: AbortSignal): Promise<Fingerprint>;
  /**
   * Check a spec before the API accepts a service. Returns null when valid, else an error message
   * that names the offending field, e.g. "ProcessSpec.Command: must not be empty".
   */
  validate(spec: TaskSpec): string | null;
  controller(task: Task, ctx: TaskContext): Controller;
  /** Release executor-wide resources on daemon shutdown (running tasks are the worker's concern). */
  close?(): Promise<void>;
}
