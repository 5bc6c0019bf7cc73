/**
 * Native shims are started through one long-lived launcher (`shoal-shim --launcher`, native/shim.c)
 * rather than by `Bun.spawn` in the daemon, and say when they started and ended over its pipe.
 *
 * Why: `Bun.spawn` blocks the daemon's event loop until the child has exec'd (it learns about a
 * failed exec that way), which on a busy host is the time the scheduler takes to run the child:
 * 4–10 ms each on the 2-core bench host while using 0.3 ms of CPU, so 1 000 tasks held the loop for
 * seconds, and every status write and heartbeat waited behind them (issue #18). Writing a line to
 * the launcher costs microseconds; the fork and exec happen in the launcher. And instead of each task
 * polling its directory every 25 ms until the program runs, the shim writes "S <task-dir>" to the
 * launcher's stdout once child.json (or exit.json) is written, and the launcher writes
 * "X <task-dir>" when a shim exits, so `start` and `wait` wake on events.
 *
 * The task directory stays the contract: these events only wake a controller, which then reads the
 * files as before. When the launcher dies, every task it knew is marked `lost` (its controller
 * falls back to polling, as for a task re-attached after a restart) and the next start makes a new one.
 */
import type { Subprocess } from 'bun';

/** What a controller learns about its shim from the launcher. */
export class ShimEvents {
  #started!: () => void;
  #exited!: () => void;
  /** Resolves once the program started or could not (or the launcher is gone: see `lost`). */
  readonly started = new Promise<void>((r) => { this.#started = r; });
  /** Resolves once the shim exited (or the launcher is gone: see `lost`). */
  readonly exited = new Promise<void>((r) => { this.#exited = r; });
  hasExited = false;
  /** The launcher died before the shim ended: nothing more will be heard; poll the files. */
  lost = false;

  markStarted(): void { this.#started(); }
  markExited(): void { this.hasExited = true; this.#started(); this.#exited(); }
  markLost(): void { this.lost = true; this.#started(); this.#exited(); }
}

export class ShimLauncher {
  #proc: Subprocess<'pipe', 'pipe', 'inherit'> | null = null;
  /** Shims started through the launcher now running, by task directory. */
  readonly #tasks = new Map<string, ShimEvents>();
  #closed = false;

  constructor(private readonly shimPath: string, private readonly env: Record<string, string | undefined>, private readonly log: (msg: string) => void) {}

  /** Shims started and not yet seen to exit. */
  get running(): number { return this.#tasks.size; }

  /** Start a shim for `taskDir`; throws when no launcher can be started. */
  spawn(taskDir: string): ShimEvents {
    if (this.#closed) throw new Error('the process executor is closed');
    if (taskDir.includes('\n')) throw new Error(`task directory ${JSON.stringify(taskDir)} cannot be named to the launcher`);
    const proc = this.#ensure();
    const ev = new ShimEvents();
    this.#tasks.get(taskDir)?.markLost(); // a shim of an earlier start of this task dir: no longer ours to follow
    this.#tasks.set(taskDir, ev);
    proc.stdin.write(`${taskDir}\n`);
    proc.stdin.flush();
    return ev;
  }

  /** Close the launcher's stdin: it exits, the shims run on. */
  async close(): Promise<void> {
    this.#closed = true;
    const proc = this.#proc;
    this.#proc = null;
    if (!proc) return;
    try { await proc.stdin.end(); } catch { /* gone already */ }
  }

  #ensure(): Subprocess<'pipe', 'pipe', 'inherit'> {
    if (this.#proc && this.#proc.exitCode === null && this.#proc.signalCode === null) return this.#proc;
    const proc = Bun.spawn([this.shimPath, '--launcher'], {
      // Its own session: a signal to the daemon's process group does not reach it.
      detached: true, stdin: 'pipe', stdout: 'pipe', stderr: 'inherit', env: this.env,
    });
    proc.unref();
    this.#proc = proc;
    void this.#read(proc);
    return proc;
  }

  async #read(proc: Subprocess<'pipe', 'pipe', 'inherit'>): Promise<void> {
    const dec = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of proc.stdout as unknown as AsyncIterable<Uint8Array>) {
        buf += dec.decode(chunk, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          this.#onLine(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      }
    } catch (err) {
      this.log(`process executor: shim launcher output: ${(err as Error).message}`);
    }
    // The launcher is gone (all its shims' report pipes too): whatever it followed is lost to us.
    if (this.#proc === proc) this.#proc = null;
    if (!this.#closed) this.log(`process executor: shim launcher exited (${proc.exitCode ?? proc.signalCode ?? 'unknown'}); ${this.#tasks.size} running tasks are polled from now on`);
    for (const ev of this.#tasks.values()) ev.markLost();
    this.#tasks.clear();
  }

  #onLine(line: string): void {
    const kind = line.slice(0, 2);
    const dir = line.slice(2);
    const ev = this.#tasks.get(dir);
    if (!ev) return;
    if (kind === 'S ') ev.markStarted();
    else if (kind === 'X ') {
      ev.markExited();
      this.#tasks.delete(dir);
    }
  }
}
