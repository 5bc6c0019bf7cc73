import type { LoadReport } from '../executor/loader.ts';
import type { MemoryStore } from '../store/index.ts';
import type { ClusterSpec, Task, TaskSpec } from '../types/index.ts';

export interface LogLine { stream: 'stdout' | 'stderr'; time: number; line: string }

export interface LogRequest { follow: boolean; since?: number; tail?: number; signal: AbortSignal }

export interface InitRequest { ListenAddr?: string; AdvertiseAddr?: string; Spec?: Partial<ClusterSpec> }

/** What the admin API needs from the daemon. The daemon wires it; tests pass fakes. */
export interface ApiDeps {
  store: MemoryStore;
  /** This host's node id (null before a cluster exists). */
  nodeId(): string | null;
  /** Make a cluster with this host as its first manager; resolves with the node id. Throws 409/503 when already in one. */
  initCluster(req: InitRequest): Promise<string>;
  /** Runtime-specific checks (the executor catalog): a message naming the problem, or null. */
  validateTaskSpec(spec: TaskSpec): string | null;
  /** A task's log lines; `since` is ms since the epoch, `tail` a line count. */
  taskLogs(task: Task, opts: LogRequest): AsyncIterable<LogLine>;
  /** Third-party executors this daemon loaded or failed to load (`GET /plugins`). */
  plugins?(): LoadReport;
  version: { Version: string; ApiVersion: string; GitCommit?: string; Os: string; Arch: string };
}
