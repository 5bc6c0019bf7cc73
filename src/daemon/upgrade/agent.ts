/**
 * This node's side of an upgrade (what `/shoal/upgrade/1` asks of it, and what the leader does for
 * itself without the network): keep a staged executable, verified and probed; swap it in, or the
 * previous one back; then have the daemon start again on it, its tasks kept.
 */
import { existsSync, rmSync } from 'node:fs';
import { errorMessage } from '../../lib/errors.ts';
import { VERSION } from '../../lib/version.ts';
import type { UpgradeReceiver } from '../../net/upgrade.ts';
import { checkSha256, expectVersion, previousOf, runningExecutable, sha256File, StagingWriter, stagedPath, swapBack, swapIn, UpgradeError } from './executable.ts';

export interface UpgradeAgentOptions {
  dataDir: string;
  log: (msg: string) => void;
  /** Stop the daemon (tasks kept) and start it again from its executable's path; never returns. */
  restart: () => void;
}

/** How long after answering before the daemon stops (the answer must get out first). */
const RESTART_AFTER_MS = 300;

export class UpgradeAgent implements UpgradeReceiver {
  #restarting = false;
  /** The version a rollback swapped back in, until the restart onto it. */
  #rolledBackTo: string | null = null;

  constructor(private readonly o: UpgradeAgentOptions) {}

  async has(sha256: string, version: string): Promise<boolean> {
    const p = stagedPath(this.o.dataDir, checkSha256(sha256));
    if (!existsSync(p)) return false;
    try {
      if ((await sha256File(p)) !== sha256) throw new UpgradeError('its digest changed');
      await expectVersion(p, version);
      return true;
    } catch (err) {
      this.o.log(`upgrade: the staged ${p} is unusable (${errorMessage(err)}); receiving it again`);
      rmSync(p, { force: true });
      return false;
    }
  }

  receive(meta: { version: string; sha256: string; size: number }): { write(chunk: Uint8Array): Promise<void>; finish(): Promise<string>; abort(): void } {
    const w = new StagingWriter(this.o.dataDir, { sha256: meta.sha256, size: meta.size });
    return {
      write: (chunk) => w.write(chunk),
      abort: () => w.abort(),
      finish: async () => {
        const { path: p } = await w.finish();
        try {
          await expectVersion(p, meta.version);
        } catch (err) {
          rmSync(p, { force: true });
          throw err;
        }
        this.o.log(`upgrade: staged shoal ${meta.version} (sha256 ${meta.sha256.slice(0, 12)}…), verified and probed`);
        return p;
      },
    };
  }

  async activate(version: string, sha256: string): Promise<void> {
    if (version === VERSION && this.#restarting) return; // asked again while restarting onto it
    const exe = runningExecutable();
    const staged = stagedPath(this.o.dataDir, checkSha256(sha256));
    if (!existsSync(staged)) throw new UpgradeError(`shoal ${version} is not staged on this node (${staged}): stage it first`);
    if ((await sha256File(staged)) !== sha256) throw new UpgradeError(`the staged ${staged} no longer has SHA-256 ${sha256}`);
    await expectVersion(staged, version);
    await swapIn(staged, exe);
    this.o.log(`upgrade: ${exe} is shoal ${version} now (shoal ${VERSION} kept at ${previousOf(exe)}); restarting on it, tasks kept`);
    this.#restartSoon();
  }

  async rollback(version: string): Promise<void> {
    // Asked again for a rollback already made (a new leader re-drives a rollback from the node
    // versions it has on record, which lag a node's restart): nothing to do.
    if (version === VERSION) return;
    if (this.#restarting && this.#rolledBackTo === version) return; // asked again while restarting onto it
    const exe = runningExecutable();
    const prev = previousOf(exe);
    if (!existsSync(prev)) throw new UpgradeError(`there is no previous executable at ${prev} to roll back to`);
    await expectVersion(prev, version);
    swapBack(exe);
    this.#rolledBackTo = version;
    this.o.log(`upgrade: rolled ${exe} back to shoal ${version}; restarting on it, tasks kept`);
    this.#restartSoon();
  }

  #restartSoon(): void {
    if (this.#restarting) return;
    this.#restarting = true;
    setTimeout(() => this.o.restart(), RESTART_AFTER_MS);
  }
}
