/**
 * A manager restarted with autolock on, before anyone gave it the key: its raft log and node key
 * are sealed (keys-at-rest.ts), so it opens neither and joins nothing. It serves only the admin
 * API's unix socket (createLockedApp: unlock, ping, version, info); a right key replaces it with
 * the real daemon on the same data dir (DaemonHandle's restart), which then rejoins the cluster.
 * No TCP listener: its TLS identity is the sealed node key.
 */
import { chmodSync, rmSync } from 'node:fs';
import { arch, platform } from 'node:os';
import type { Server } from 'bun';
import { createLockedApp } from '../api/locked.ts';
import { API_VERSION, COMMIT, VERSION } from '../lib/version.ts';
import { socketPath } from '../lib/paths.ts';
import { loadOrCreateNodeId } from './identity.ts';
import { type AtRestKeys, SWARM_LOCKED_MESSAGE } from './keys-at-rest.ts';
import type { DaemonOptions, Log, RunningDaemon } from './options.ts';

export class LockedDaemon implements RunningDaemon {
  readonly locked = true;
  readonly socketPath: string;
  readonly nodeId: string;
  #server: Server<unknown> | null = null;
  #settle!: () => void;
  readonly stopped = new Promise<void>((resolve) => {
    this.#settle = resolve;
  });

  private constructor(opts: DaemonOptions) {
    this.socketPath = socketPath(opts.dataDir);
    this.nodeId = loadOrCreateNodeId(opts.dataDir);
  }

  static async start(opts: DaemonOptions, log: Log, keys: AtRestKeys, restartAs: (next: DaemonOptions) => Promise<void>): Promise<LockedDaemon> {
    const d = new LockedDaemon(opts);
    const app = createLockedApp({
      nodeId: d.nodeId,
      version: { Version: VERSION, ApiVersion: API_VERSION, GitCommit: COMMIT, Os: platform(), Arch: arch() === 'x64' ? 'amd64' : arch() },
      lockedMessage: SWARM_LOCKED_MESSAGE,
      async unlock(unlockKey) {
        keys.unlock(unlockKey); // a wrong key throws (401) and the node stays locked
        log('unlocked: starting the manager');
        await restartAs({ ...opts, unlockKey });
      },
    });
    rmSync(d.socketPath, { force: true });
    const unixOptions = { unix: d.socketPath, fetch: (req: Request) => app.fetch(req) };
    d.#server = Bun.serve(unixOptions as unknown as Parameters<typeof Bun.serve>[0]);
    chmodSync(d.socketPath, 0o600);
    log(`shoal ${VERSION} node ${d.nodeId}: manager LOCKED (autolock): its raft log and keys are sealed; unlock it with "shoal swarm unlock" (or "docker swarm unlock"); API on unix://${d.socketPath}`);
    return d;
  }

  /** Stops listening; the unlock request that asked for the restart is still answered (its connection is open). */
  async stop(): Promise<void> {
    void this.#server?.stop(false);
    this.#server = null;
    rmSync(this.socketPath, { force: true });
    this.#settle();
  }
}
