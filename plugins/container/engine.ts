/** Small helpers around dockerode: engine errors, image pulls, the event stream. */
import type Docker from 'dockerode';

/** The HTTP status of a dockerode error, when the engine answered. */
export function statusOf(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown })?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** The engine's own words for an error ("No such image: …"), else the client's message. */
export function engineMessage(err: unknown): string {
  const e = err as { json?: { message?: unknown }; reason?: unknown; message?: unknown };
  if (e?.json && typeof e.json.message === 'string') return e.json.message;
  const msg = typeof e?.message === 'string' ? e.message : String(err);
  // dockerode: "(HTTP code 404) no such container - No such container: x " → the engine's part.
  const m = /^\(HTTP code \d+\) [^-]*- (.*)$/s.exec(msg);
  return (m ? m[1]! : msg).trim();
}

export const isNotFound = (err: unknown) => statusOf(err) === 404;

/** Pull `image`, resolving when the engine has it; rejects with the engine's message. */
export async function pullImage(docker: Docker, image: string, signal: AbortSignal): Promise<void> {
  const stream = await docker.pull(image, { abortSignal: signal });
  await new Promise<void>((resolve, reject) => {
    const onAbort = () => { (stream as { destroy?: () => void }).destroy?.(); reject(signal.reason); };
    signal.addEventListener('abort', onAbort, { once: true });
    // The engine answers 200 and reports failures inside the progress stream.
    docker.modem.followProgress(stream, (err: Error | null, events: { error?: string; errorDetail?: { message?: string } }[]) => {
      signal.removeEventListener('abort', onAbort);
      const failed = events?.find((e) => e.error || e.errorDetail);
      if (err) reject(err);
      else if (failed) reject(new Error(failed.errorDetail?.message ?? failed.error));
      else resolve();
    });
  });
}

export interface EngineEvent { Type?: string; Action?: string; status?: string; id?: string; Actor?: { Attributes?: Record<string, string> } }

/**
 * Subscribe to the engine's events for one container. Resolves once the engine listens, so a
 * check made after it cannot miss an event. `next()` resolves with the next event, or undefined
 * when the stream ends or `signal` aborts.
 */
export async function containerEvents(
  docker: Docker, containerId: string, actions: string[], signal: AbortSignal,
): Promise<{ next(): Promise<EngineEvent | undefined> }> {
  const stream = await docker.getEvents({ filters: { container: [containerId], event: actions }, abortSignal: signal }) as NodeJS.ReadableStream & { destroy(): void };
  const queue: EngineEvent[] = [];
  let waiter: ((e: EngineEvent | undefined) => void) | undefined;
  let ended = false;
  let buf = '';
  const finish = () => { ended = true; waiter?.(undefined); waiter = undefined; };
  stream.on('data', (chunk: Buffer | string) => {
    buf += chunk.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      let e: EngineEvent;
      try { e = JSON.parse(line); } catch { continue; }
      if (waiter) { waiter(e); waiter = undefined; } else if (queue.length < 1024) queue.push(e);
    }
  });
  stream.on('end', finish);
  stream.on('close', finish);
  stream.on('error', finish);
  signal.addEventListener('abort', () => { stream.destroy(); finish(); }, { once: true });
  return {
    next: () => {
      if (queue.length) return Promise.resolve(queue.shift());
      if (ended || signal.aborted) return Promise.resolve(undefined);
      return new Promise((resolve) => { waiter = resolve; });
    },
  };
}

/** "health_status: unhealthy" → "unhealthy". */
export function healthOfEvent(e: EngineEvent): string | undefined {
  const action = e.Action ?? e.status ?? '';
  return action.startsWith('health_status:') ? action.slice('health_status:'.length).trim() : undefined;
}
