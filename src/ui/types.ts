/** The parts of the API's Docker-shaped objects the page shows (it reads them, it never trusts more). */

export interface Meta { ID: string; Version: { Index: number }; CreatedAt?: string; UpdatedAt?: string }

export interface NodeObj extends Meta {
  Spec: { Role: string; Availability: string; Name?: string; Labels?: Record<string, string> };
  Description?: { Hostname?: string; Platform?: { Architecture?: string; OS?: string } };
  Status: { State: string; Addr?: string; Message?: string };
  ManagerStatus?: { Leader?: boolean; Reachability: string; Addr: string };
}

export interface ServiceSpec {
  Name: string;
  Labels?: Record<string, string>;
  TaskTemplate: { Runtime?: string; ContainerSpec?: { Image?: string }; ProcessSpec?: { Command?: string[] } };
  Mode?: { Replicated?: { Replicas?: number }; Global?: object; ReplicatedJob?: object; GlobalJob?: object };
  [k: string]: unknown;
}

export interface ServiceObj extends Meta {
  Spec: ServiceSpec;
  PreviousSpec?: ServiceSpec;
  UpdateStatus?: { State?: string; StartedAt?: string; CompletedAt?: string; Message?: string };
  ServiceStatus?: { RunningTasks: number; DesiredTasks: number; CompletedTasks?: number };
}

export interface TaskObj extends Meta {
  ServiceID: string;
  NodeID?: string;
  Slot?: number;
  DesiredState: string;
  Status: { State: string; Message?: string; Err?: string; Timestamp?: string };
}

export interface NetworkObj { Id?: string; ID?: string; Name: string; Driver?: string; Scope?: string; IPAM?: { Config?: { Subnet?: string }[] } }

export interface NamedObj extends Meta { Spec: { Name: string; Labels?: Record<string, string> } }

export interface InfoObj {
  ID: string;
  Name: string;
  ServerVersion: string;
  Swarm: { NodeID: string; ControlAvailable: boolean; Error?: string; Nodes?: number; Managers?: number; Cluster?: { ID: string } };
}

/** `GET /raft`: the replica of the manager serving this page. */
export interface RaftObj {
  NodeID: string; Role: string; Leader: string; Term: number; CommitIndex: number; AppliedIndex: number; LastIndex: number;
  Progress: Record<string, { Match: number; RecentActive: boolean }>;
}

export interface Snapshot {
  info: InfoObj;
  nodes: NodeObj[];
  services: ServiceObj[];
  tasks: TaskObj[];
  networks: NetworkObj[];
  secrets: NamedObj[] | null;
  configs: NamedObj[] | null;
  raft: RaftObj | null;
}

export function modeOf(s: ServiceSpec): string {
  const m = s.Mode ?? {};
  if (m.Global) return 'global';
  if (m.ReplicatedJob) return 'replicated-job';
  if (m.GlobalJob) return 'global-job';
  return 'replicated';
}

export function nodeName(n: NodeObj | undefined): string {
  return n ? n.Description?.Hostname || n.Spec.Name || n.ID.slice(0, 12) : '';
}
