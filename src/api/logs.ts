/**
 * `GET /services/{id}/logs`. Docker multiplexes stdout and stderr in an 8-byte-header frame format;
 * we answer plain text, one line per log line: `<task-name> | <line>` (with `timestamps=1`,
 * `<RFC 3339 time> <task-name> | <line>`); the docker CLI gets its multiplexed frames. See docs/api.md.
 */
import type { Context } from 'hono';
import { InvalidArgumentError } from '../lib/errors.ts';
import type { Service, Task } from '../types/index.ts';
import type { ApiDeps, LogLine } from './deps.ts';
import { isDockerCli } from './docker-compat.ts';
import { taskName } from './lookup.ts';
import { boolParam } from './middleware.ts';

/** Bound on the lines a non-following request gathers, so one request cannot hold unbounded memory. */
export const MAX_LOG_LINES = 100_000;
/** Bound on the tasks one following request streams from (a crash-looping service makes many). */
export const MAX_FOLLOWED_TASKS = 1_000;

export interface LogQuery { follow: boolean; since?: number; tail?: number; stdout: boolean; stderr: boolean; timestamps: boolean }

/** `since`: unix seconds (fractional allowed, as Docker sends) or an RFC 3339 time; returned in ms. */
export function parseSince(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '' || raw === '0') return undefined;
  if (/^\d+(\.\d+)?$/.test(raw)) return Math.floor(Number(raw) * 1000);
  const t = Date.parse(raw);
  if (Number.isNaN(t)) throw new InvalidArgumentError(`invalid query parameter since="${raw}": expected unix seconds or an RFC 3339 time`);
  return t;
}

export function parseTail(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '' || raw === 'all') return undefined;
  if (!/^\d+$/.test(raw)) throw new InvalidArgumentError(`invalid query parameter tail="${raw}": expected a number of lines or "all"`);
  return Number(raw);
}

export function logQuery(c: Context): LogQuery {
  const stdout = boolParam(c, 'stdout');
  const stderr = boolParam(c, 'stderr');
  const neither = stdout === undefined && stderr === undefined;
  return {
    follow: boolParam(c, 'follow') ?? false,
    since: parseSince(c.req.query('since')),
    tail: parseTail(c.req.query('tail')),
    stdout: neither || !!stdout,
    stderr: neither || !!stderr,
    timestamps: boolParam(c, 'timestamps') ?? false,
  };
}

function render(name: string, l: LogLine, q: LogQuery): string {
  return `${q.timestamps ? `${new Date(l.time).toISOString()} ` : ''}${name} | ${l.line}\n`;
}

/**
 * For the docker CLI: its multiplexed frames (8-byte header: stream 1|2, three zero bytes, payload
 * length big-endian), each payload `[<time> ]<details> <line>\n` with the details it parses to name the
 * task (`com.docker.swarm.node.id=…,com.docker.swarm.service.id=…,com.docker.swarm.task.id=…`).
 */
export function dockerFrame(t: Task, l: LogLine, q: LogQuery): Uint8Array {
  const details = `com.docker.swarm.node.id=${t.NodeID || 'none'},com.docker.swarm.service.id=${t.ServiceID},com.docker.swarm.task.id=${t.ID}`;
  const payload = new TextEncoder().encode(`${q.timestamps ? `${new Date(l.time).toISOString()} ` : ''}${details} ${l.line}\n`);
  const frame = new Uint8Array(8 + payload.length);
  frame[0] = l.stream === 'stderr' ? 2 : 1;
  new DataView(frame.buffer).setUint32(4, payload.length);
  frame.set(payload, 8);
  return frame;
}

/** Tasks whose logs are read at once by one non-following request (each is a stream from a node). */
export const LOG_READ_CONCURRENCY = 8;

/** The logs of a service's tasks, or of `only` that one task (`GET /tasks/{id}/logs`). */
export function serviceLogs(c: Context, deps: ApiDeps, svc: Pick<Service, 'ID'> & { Spec: { Name: string } }, only?: Task): Response {
  const q = logQuery(c);
  // A following stream may be quiet for long: no idle timeout for it (when served by Bun.serve with
  // the server passed as env).
  if (q.follow) (c.env as { timeout?(req: Request, seconds: number): void } | undefined)?.timeout?.(c.req.raw, 0);
  // A task never placed on a node has no logs.
  const placed = (t: Task) => !!t.NodeID;
  const tasks = (only ? [only] : deps.store.by('tasks', 'service', svc.ID))
    .filter(placed)
    .sort((a, b) => a.Slot - b.Slot || a.CreatedAt.localeCompare(b.CreatedAt));
  const abort = new AbortController();
  const signal = AbortSignal.any([abort.signal, c.req.raw.signal]);
  const wanted = (l: LogLine) => (l.stream === 'stdout' ? q.stdout : q.stderr);
  const enc = new TextEncoder();
  const docker = isDockerCli(c);
  const encode = (t: Task, name: string, l: LogLine) => (docker ? dockerFrame(t, l, q) : enc.encode(render(name, l, q)));
  const opts = (_t: Task) => ({ follow: q.follow, since: q.since, tail: q.tail, signal });

  const stream = new ReadableStream<Uint8Array>({
    async start(controller) {
      try {
        if (!q.follow) {
          // Gather every task's lines, then answer them in time order.
          const all: { t: Task; name: string; l: LogLine }[] = [];
          const problems: string[] = [];
          const queue = [...tasks];
          const worker = async () => {
            for (let t = queue.shift(); t; t = queue.shift()) {
              const name = taskName(t, svc.Spec.Name);
              try {
                for await (const l of deps.taskLogs(t, opts(t))) {
                  if (all.length >= MAX_LOG_LINES) break;
                  if (wanted(l)) all.push({ t, name, l });
                }
              } catch (e) {
                // One task's node being away does not hide the others' lines.
                problems.push(`error: ${name}: ${(e as Error).message}\n`);
              }
            }
          };
          await Promise.all(Array.from({ length: Math.min(LOG_READ_CONCURRENCY, tasks.length) }, worker));
          all.sort((a, b) => a.l.time - b.l.time);
          for (const { t, name, l } of all) controller.enqueue(encode(t, name, l));
          if (!docker) for (const p of problems) controller.enqueue(enc.encode(p));
        } else {
          // Follow: every task there is now, and each one the orchestrator makes from here on
          // (restarts, scale-ups), until the client goes away or the service is removed.
          const followed = new Set<string>();
          const consume = async (t: Task) => {
            const name = taskName(t, svc.Spec.Name);
            try {
              for await (const l of deps.taskLogs(t, opts(t))) {
                if (signal.aborted) return;
                if (wanted(l)) controller.enqueue(encode(t, name, l));
              }
            } catch (e) {
              if (!signal.aborted && !docker) controller.enqueue(enc.encode(`error: ${name}: ${(e as Error).message}\n`));
            }
          };
          const follow = (t: Task) => {
            if (!placed(t) || followed.has(t.ID) || followed.size >= MAX_FOLLOWED_TASKS) return;
            followed.add(t.ID);
            void consume(t);
          };
          const unwatch = deps.store.watch((ev) => {
            // A task is followed once it is placed on a node (created placed, or assigned later).
            if ((ev.kind === 'create' || ev.kind === 'update') && ev.table === 'tasks' && (only ? ev.object.ID === only.ID : (ev.object as Task).ServiceID === svc.ID)) follow(ev.object as Task);
            if (ev.kind === 'delete' && ev.table === 'services' && ev.object.ID === svc.ID) abort.abort();
          });
          try {
            tasks.forEach(follow);
            await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
          } finally {
            unwatch();
          }
        }
        controller.close();
      } catch (e) {
        if (signal.aborted) {
          try { controller.close(); } catch {}
          return;
        }
        // Headers are gone already: say what happened in the stream itself.
        if (!docker) controller.enqueue(enc.encode(`error: ${(e as Error).message}\n`));
        controller.close();
      }
    },
    cancel() {
      abort.abort();
    },
  });
  const type = docker ? 'application/vnd.docker.multiplexed-stream' : 'text/plain; charset=utf-8';
  return new Response(stream, { status: 200, headers: { 'content-type': type } });
}
