/**
 * Secrets and configs on a worker. The agent keeps what the dispatcher sent in memory only
 * (`SecretCache`); when a task that uses them is prepared, its files are written to a tmpfs of its
 * own (`TaskFileMounts`), so the bytes never reach a disk, and the tmpfs is unmounted as soon as the
 * task ends. Executors get the paths in `TaskContext.files` and hand them to the task their own way.
 */
import { chmod, chown, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { TaskFile, TaskFiles } from '../executor/contract.ts';
import type { FilePayloadKey, SessionMessages } from '../manager/dispatcher/protocol.ts';
import { type FileKind, type Task, taskFileRefs } from '../types/index.ts';

const key = (k: FilePayloadKey) => `${k.kind}/${k.id}`;

/** The objects this node's tasks use, in memory only; forgotten when the dispatcher withdraws them. */
export class SecretCache {
  readonly #items = new Map<string, { name: string; data: Uint8Array }>();

  apply(body: SessionMessages['secrets']): void {
    for (const p of body.upserts) this.#items.set(key(p), { name: p.name, data: p.data });
    for (const k of body.removed) this.#forget(key(k));
  }

  get(kind: FileKind, id: string): { name: string; data: Uint8Array } | undefined {
    return this.#items.get(`${kind}/${id}`);
  }

  /** Forget everything the given tasks do not use (after a full assignment set from a new session). */
  retainFor(tasks: readonly Task[]): void {
    const used = new Set(tasks.flatMap((t) => taskFileRefs(t.Spec).map((r) => `${r.kind}/${r.id}`)));
    for (const k of [...this.#items.keys()]) if (!used.has(k)) this.#forget(k);
  }

  get size(): number { return this.#items.size; }

  #forget(k: string): void {
    // Zeroed so the bytes do not linger in memory until the collector reuses it.
    this.#items.get(k)?.data.fill(0);
    this.#items.delete(k);
  }
}

export interface TaskFileMountsOptions {
  /** Parent of the per-task tmpfs mounts (e.g. /run/shoal/task-files). */
  root: string;
  cache: SecretCache;
  /** Default: the daemon's uid is 0. Without root no tmpfs can be mounted, and such tasks are refused. */
  isRoot?: () => boolean;
  log?: (msg: string) => void;
}

const PAGE = 4096;

async function run(argv: string[]): Promise<void> {
  const p = Bun.spawn(argv, { stdout: 'ignore', stderr: 'pipe' });
  const [code, err] = await Promise.all([p.exited, new Response(p.stderr).text()]);
  if (code !== 0) throw new Error(`${argv.join(' ')}: ${err.trim() || `exit code ${code}`}`);
}

async function isMountPoint(dir: string): Promise<boolean> {
  try {
    const [a, b] = await Promise.all([stat(dir), stat(dirname(dir))]);
    return a.dev !== b.dev;
  } catch {
    return false;
  }
}

/** Host file name of a target: plain names keep theirs; paths (containers) get a flat one. */
function hostName(target: string, i: number): string {
  return /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(target) ? target : `file-${i}`;
}

/** One tmpfs per task that uses secrets or configs, holding exactly its files. */
export class TaskFileMounts {
  constructor(private readonly o: TaskFileMountsOptions) {}

  dirOf(taskId: string): string { return join(this.o.root, taskId); }

  /** The task's files, written to its tmpfs (mounted if needed); undefined when it uses none. Throws naming the problem. */
  async prepare(task: Task): Promise<TaskFiles | undefined> {
    const refs = taskFileRefs(task.Spec);
    if (refs.length === 0) return undefined;
    const root = this.o.isRoot?.() ?? process.getuid?.() === 0;
    if (!root) {
      throw new Error(`secrets and configs are given to tasks on a tmpfs (never on disk), which needs the daemon to run as root (it runs as uid ${process.getuid?.()})`);
    }
    const contents = refs.map((r) => {
      const o = this.o.cache.get(r.kind, r.id);
      if (!o) throw new Error(`${r.kind} ${r.name} (${r.id}) has not reached this node; it may have been removed`);
      return o.data;
    });
    const dir = this.dirOf(task.ID);
    await this.#ensureRoot();
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (!(await isMountPoint(dir))) {
      // Twice the content, page-rounded per file, leaves room for an executor's archive of it (VMs).
      const bytes = contents.reduce((n, d) => n + Math.ceil((d.length + 1024) / PAGE) * PAGE, 0);
      await run(['mount', '-t', 'tmpfs', '-o', `size=${2 * bytes + 256 * 1024},mode=0700,nosuid,nodev,noexec`, 'tmpfs', dir]);
    }
    const secretsDir = join(dir, 'secrets');
    const configsDir = join(dir, 'configs');
    await mkdir(secretsDir, { recursive: true, mode: 0o755 });
    await mkdir(configsDir, { recursive: true, mode: 0o755 });
    const files: TaskFile[] = [];
    for (const [i, r] of refs.entries()) {
      const path = join(r.kind === 'secret' ? secretsDir : configsDir, hostName(r.file.Name, i));
      const uid = Number(r.file.UID ?? 0);
      const gid = Number(r.file.GID ?? 0);
      const mode = r.file.Mode ?? 0o444;
      await writeFile(path, contents[i]!, { mode: 0o600 });
      await chown(path, uid, gid);
      await chmod(path, mode);
      files.push({ kind: r.kind, id: r.id, name: r.name, target: r.file.Name, path, uid, gid, mode });
    }
    return { dir, secretsDir, configsDir, files };
  }

  /**
   * The parent of the task mounts (and its own parent, ours too) can be passed through but not
   * listed: a task running as another user reaches its own tmpfs, whose mode is what guards it.
   */
  async #ensureRoot(): Promise<void> {
    await mkdir(this.o.root, { recursive: true, mode: 0o711 });
    for (const d of [this.o.root, dirname(this.o.root)]) {
      const st = await stat(d);
      if (st.uid === 0 && (st.mode & 0o011) !== 0o011) await chmod(d, (st.mode & 0o7777) | 0o011);
    }
  }

  /** Unmount and remove the task's tmpfs. Idempotent; never throws (logs). */
  async release(taskId: string): Promise<void> {
    const dir = this.dirOf(taskId);
    try {
      if (await isMountPoint(dir)) await run(['umount', dir]).catch(() => run(['umount', '-l', dir]));
      await rm(dir, { recursive: true, force: true });
    } catch (err) {
      this.o.log?.(`task ${taskId}: releasing its secrets tmpfs ${dir}: ${(err as Error).message}`);
    }
  }
}
