/**
 * What the `daemon` command holds: the running daemon, which a join through the API or a promotion
 * replaces with a new one on the same data dir (new node id or new role), as a restart would.
 */
import { errorMessage } from '../lib/errors.ts';
import type { DaemonOptions, Log, RunningDaemon } from './options.ts';

/** Start one daemon; `restartAs` replaces it with another. */
export type StartOne = (opts: DaemonOptions, log: Log, restartAs: (next: DaemonOptions) => Promise<void>) => Promise<RunningDaemon>;

export class DaemonHandle implements RunningDaemon {
  #current!: RunningDaemon;
  #settle!: { resolve: () => void; reject: (e: Error) => void };
  readonly stopped = new Promise<void>((resolve, reject) => {
    this.#settle = { resolve, reject };
  });

  constructor(private readonly startOne: StartOne, private readonly log: Log, private readonly unlock: () => void) {
    this.stopped.catch(() => {});
  }

  get socketPath(): string { return this.#current.socketPath; }
  get nodeId(): string { return this.#current.nodeId; }

  async boot(opts: DaemonOptions): Promise<void> {
    const d = await this.startOne(opts, this.log, (next) => this.#restart(d, next));
    this.#current = d;
    d.stopped.then(() => {
      if (this.#current !== d) return; // replaced: the next one settles the handle
      this.unlock();
      this.#settle.resolve();
    }, (err: Error) => {
      if (this.#current !== d) return;
      this.unlock();
      this.#settle.reject(err);
    });
  }

  async #restart(old: RunningDaemon, next: DaemonOptions): Promise<void> {
    this.#current = null as unknown as RunningDaemon; // `old` stopping must not settle the handle
    await old.stop();
    try {
      // Done once: the log holds it now. A locked manager did not open its log: the unlocked start does it.
      await this.boot({ ...next, forceNewCluster: old.locked ? next.forceNewCluster : false, restore: old.locked ? next.restore : undefined, restored: old.locked ? next.restored : undefined });
    } catch (err) {
      this.log(`starting again ${old.locked ? 'after the unlock' : 'after the join'} failed: ${errorMessage(err)}`);
      this.unlock();
      this.#settle.reject(err as Error);
    }
  }

  stop(): Promise<void> {
    return this.#current ? this.#current.stop().then(() => this.stopped) : this.stopped;
  }
}
