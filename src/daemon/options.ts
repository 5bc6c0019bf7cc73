/** What `shoal daemon` is started with, and what it hands back. */
import type { PreparedRestore, RestoreRequest } from './restore.ts';

export type Log = (msg: string) => void;

export interface DaemonOptions {
  dataDir: string;
  /** Create a cluster when the data dir holds none (a no-op when it does). */
  init: boolean;
  /** Also serve the admin API on TCP (HOST:PORT). */
  tcp?: string;
  /** Also serve `GET /metrics` on TCP (HOST:PORT), with the same mutual TLS as `tcp`. */
  metricsAddr?: string;
  /** Leave tasks running when the daemon stops (they are re-attached at the next start). */
  keepTasks: boolean;
  /** Third-party executors are loaded from here at start. Default `<dataDir>/plugins`. */
  pluginDir?: string;
  /** Serve this executable and install.sh over plain HTTP on IP:PORT (fleet boot; off unless given). */
  fleetAddr?: string;
  /** The libp2p listener, IP:PORT (default 0.0.0.0:4242). */
  listenAddr?: string;
  /** Where other nodes reach this one, IP:PORT (default: the listen address, or this host's first IPv4 address). */
  advertiseAddr?: string;
  /** Join the cluster of the manager at this IP:PORT with `token`, unless this data dir is in one already. */
  join?: string;
  token?: string;
  /** `cert.pem,key.pem` of an external root CA for a new cluster. */
  externalCa?: string;
  /** `--external-ca-url URL`: with --init, a cfssl server holds the root's key and signs node certificates. */
  externalCaUrl?: string;
  /** The address the ingress mesh binds published ports on (default all: 0.0.0.0). */
  meshAddr?: string;
  /** A surviving manager after a lost quorum: recover a one-manager cluster from its own log (force-new-cluster.ts). */
  forceNewCluster?: boolean;
  /** Start a new cluster from a backup file (restore.ts); needs forceNewCluster. */
  restore?: RestoreRequest;
  /** Set by startDaemon once the backup and the data dir passed every check (restore.ts). */
  restored?: PreparedRestore;
  /** Autolock's key, given by `swarm unlock` to a locked manager (locked.ts) for the start that follows. */
  unlockKey?: string;
  log?: Log;
}

export interface RunningDaemon {
  readonly socketPath: string;
  readonly nodeId: string;
  /** Settles when the daemon has stopped: resolves after stop(), rejects when it stopped itself on a fatal error. */
  readonly stopped: Promise<void>;
  stop(): Promise<void>;
  /** A manager waiting for its unlock key (locked.ts): its start options are still to be carried out. */
  readonly locked?: boolean;
}
