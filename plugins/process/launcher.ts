/**
 * Native process tasks are run by supervisors (`shoal-shim --launcher`, native/shim.c): long-lived
 * processes, each of which starts and supervises up to `TASKS_PER_SUPERVISOR` tasks, instead of a
 * shim process of its own for each task. The daemon names a task directory on a supervisor's
 * stdin; the supervisor starts the program (it writes shim.json with its own pid, marked `shared`,
 * then child.json), collects its output into output.log, and when the program ends kills what is
 * left of it and writes exit.json, exactly as a one-task shim does. It says "S <task-dir>" on its
 * stdout once the program started (or could not), and "X <task-dir>" once the task's supervision
 * is over, so `start` and `wait` wake on events.
 *
 * Why not a shim per task: on the 2-core bench host a shim process of its own cost ~3.5 ms of CPU
 * per task (its spawn and exec, its own start-up, its fork of the program), about a quarter of
 * what starting a process task cost in all; 1,000 replicas spent ~3.5 s of CPU on shims alone
 * (issue #18, docs/footprint.md). A supervisor spends ~0.7 ms a task. And why not supervision in
 * the daemon: tasks must outlive the daemon, and a supervisor does. It keeps running after its
 * stdin ends (the daemon closed the executor, or died) until its last task has ended; a restarted
 * daemon re-attaches to those tasks through their files, as before, and starts new supervisors.
 *
 * The cost is a wider blast radius: a supervisor that dies takes the supervision of all its tasks
 * with it (their programs run on; their output is no longer collected, and their end is learnt
 * from /proc only, "exit status unknown"). `TASKS_PER_SUPERVISOR` bounds that: a supervisor that
 * has been given that many tasks is retired (its stdin is closed; it ends with its last task) and
 * the next task goes to a new one.
 *
 * The task directory stays the contract: these events only wake a controller, which then reads the
 * files as before. When a supervisor dies, every task it had is marked `lost` (its controller falls
 * back to polling, as for a task re-attached after a restart).
 */
import type { Subprocess } from 'bun';

/** Tasks one supervisor is given before the next goes to a new one (see above). */
export const TASKS_PER_SUPERVISOR = 128;

/** What a controller learns about its task's supervision from the supervisor. */
export class ShimEvents {
  #started!: () => void;
  #exited!: () => void;
  /** Resolves once the program started or could not (or the supervisor is gone: see `lost`). */
  readonly started = new Promise<void>((r) => { this.#started = r; });
  /** Resolves once the task's supervision ended (or the supervisor is gone: see `lost`). */
  readonly exited = new Promise<void>((r) => { this.#exited = r; });
  hasExited = false;
  /** The supervisor died (or the executor closed) before the task ended: nothing more will be heard; poll the files. */
  lost = false;

  markStarted(): void { this.#started(); }
  markExited(): void { this.hasExited = true; this.#started(); this.#exited(); }
  markLost(): void { this.lost = true; this.#started(); this.#exited(); }
}

type Proc = Subprocess<'pipe', 'pipe', 'ignore'>;

interface Supervisor {
  proc: Proc;
  /** Tasks given to it so far (it is retired at TASKS_PER_SUPERVISOR). */
  given: number;
  reader?: { cancel(): Promise<void> };
}

interface Followed { ev: ShimEvents; sup: Supervisor }

export class ShimLauncher {
  /** The supervisor new tasks go to. */
  #current: Supervisor | null = null;
  readonly #supervisors = new Set<Supervisor>();
  /** Tasks started through a supervisor and not yet seen to end, by task directory. */
  readonly #tasks = new Map<string, Followed>();
  #closed = false;

  constructor(
    private readonly shimPath: string,
    private readonly env: Record<string, string | undefined>,
    private readonly log: (msg: string) => void,
    private readonly perSupervisor = TASKS_PER_SUPERVISOR,
  ) {}

  /** Tasks started and not yet seen to end. */
  get running(): number { return this.#tasks.size; }

  /** Start `taskDir`'s program under a supervisor; throws when no supervisor can be started. */
  spawn(taskDir: string): ShimEvents {
    if (this.#closed) throw new Error('the process executor is closed');
    if (taskDir.includes('\n')) throw new Error(`task directory ${JSON.stringify(taskDir)} cannot be named to the launcher`);
    const sup = this.#ensure();
    const ev = new ShimEvents();
    this.#tasks.get(taskDir)?.ev.markLost(); // an earlier start of this task dir: no longer ours to follow
    this.#tasks.set(taskDir, { ev, sup });
    sup.proc.stdin.write(`${taskDir}\n`);
    sup.proc.stdin.flush();
    if (++sup.given >= this.perSupervisor) this.#retire(sup);
    return ev;
  }

  /**
   * Close every supervisor's stdin: each ends once its last task has. Their tasks run on, and are
   * marked lost here (nothing more is read from the supervisors): a controller still waiting polls.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#current = null;
    const sups = [...this.#supervisors];
    this.#supervisors.clear();
    for (const f of this.#tasks.values()) f.ev.markLost();
    this.#tasks.clear();
    await Promise.all(sups.map(async (s) => {
      try { await s.proc.stdin.end(); } catch { /* gone already */ }
      try { await s.reader?.cancel(); } catch { /* ended already */ }
    }));
  }

  #retire(sup: Supervisor): void {
    if (this.#current === sup) this.#current = null;
    try { void sup.proc.stdin.end(); } catch { /* gone already */ }
  }

  #ensure(): Supervisor {
    const cur = this.#current;
    if (cur && cur.proc.exitCode === null && cur.proc.signalCode === null) return cur;
    const proc = Bun.spawn([this.shimPath, '--launcher'], {
      // Its own session: a signal to the daemon's process group does not reach it. No stderr: it
      // outlives the daemon, and must not hold a pipe a daemon's parent waits on.
      detached: true, stdin: 'pipe', stdout: 'pipe', stderr: 'ignore', env: this.env,
    });
    proc.unref();
    const sup: Supervisor = { proc, given: 0 };
    this.#current = sup;
    this.#supervisors.add(sup);
    void this.#read(sup);
    return sup;
  }

  async #read(sup: Supervisor): Promise<void> {
    const dec = new TextDecoder();
    let buf = '';
    const reader = sup.proc.stdout.getReader();
    sup.reader = reader;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          this.#onLine(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      }
    } catch (err) {
      if (!this.#closed) this.log(`process executor: supervisor ${sup.proc.pid} output: ${(err as Error).message}`);
    }
    if (this.#closed) return; // close() marked its tasks already
    // The supervisor is gone: whatever it still had is lost to us.
    this.#supervisors.delete(sup);
    if (this.#current === sup) this.#current = null;
    const orphans = [...this.#tasks].filter(([, f]) => f.sup === sup);
    if (orphans.length) this.log(`process executor: supervisor ${sup.proc.pid} exited (${sup.proc.exitCode ?? sup.proc.signalCode ?? 'unknown'}); its ${orphans.length} running tasks are polled from now on`);
    for (const [dir, f] of orphans) { f.ev.markLost(); this.#tasks.delete(dir); }
  }

  #onLine(line: string): void {
    const kind = line.slice(0, 2);
    const dir = line.slice(2);
    const f = this.#tasks.get(dir);
    if (!f) return;
    if (kind === 'S ') f.ev.markStarted();
    else if (kind === 'X ') {
      f.ev.markExited();
      this.#tasks.delete(dir);
    }
  }
}
