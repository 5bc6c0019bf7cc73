/** The page's calls to the admin API (same origin: the page is served by the API itself). */

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function failure(res: Response, what: string): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as { message?: string };
    if (body.message) message = body.message;
  } catch {}
  return new ApiError(res.status, `${what}: ${message}${res.status === 403 ? ' (HTTP 403)' : ''}`);
}

export async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  if (!res.ok) throw await failure(res, `GET ${path}`);
  return (await res.json()) as T;
}

/** A list that may not exist on this version of the daemon: null when the route answers 404. */
export async function getOptional<T>(path: string): Promise<T | null> {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  if (res.status === 404) return null;
  if (!res.ok) throw await failure(res, `GET ${path}`);
  return (await res.json()) as T;
}

export async function post(path: string, body?: unknown): Promise<void> {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw await failure(res, `POST ${path.replace(/\?.*/, '')}`);
}

/** Calls `each` with every line of a streaming text response until it ends or `signal` aborts. */
export async function readLines(res: Response, each: (line: string) => void): Promise<void> {
  if (!res.body) return;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let rest = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    rest += value;
    const lines = rest.split('\n');
    rest = lines.pop() ?? '';
    for (const l of lines) each(l);
  }
  if (rest) each(rest);
}

export type LiveMode = 'events' | 'polling';

/** While the events stream is missing or broken, refresh this often; also how soon a broken stream is retried. */
export const POLL_MS = 1000;
/** A daemon without GET /events is asked again this rarely (it may have been upgraded). */
const EVENTS_RECHECK_MS = 60_000;

/**
 * Calls `changed` whenever the cluster may have changed: on every line of GET /events (Docker's
 * JSON-lines stream) while it answers, else every POLL_MS. Polling also runs while the stream's
 * headers have not come yet (a server may hold them until the first event). `mode` reports which
 * one is in use.
 */
export function watchCluster(changed: () => void, mode: (m: LiveMode, why?: string) => void): () => void {
  let stopped = false;
  let polling = false;
  let pollTimer: ReturnType<typeof setTimeout> | undefined;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  const abort = new AbortController();

  const poll = () => {
    if (stopped || !polling) return;
    changed();
    pollTimer = setTimeout(poll, POLL_MS);
  };
  const startPolling = () => {
    if (polling) return;
    polling = true;
    poll();
  };
  const stopPolling = () => {
    polling = false;
    clearTimeout(pollTimer);
  };

  const stream = async () => {
    if (stopped) return;
    let why = '';
    let retry = POLL_MS;
    try {
      const res = await fetch('/events', { signal: abort.signal, headers: { accept: 'application/json' } });
      if (res.ok) {
        stopPolling();
        mode('events');
        changed(); // anything between the last refresh and the stream's start
        await readLines(res, (line) => line.trim() && changed());
        why = 'the events stream ended';
      } else {
        why = res.status === 404 ? 'this daemon has no GET /events' : `GET /events answered ${res.status}`;
        if (res.status === 404) retry = EVENTS_RECHECK_MS;
        await res.body?.cancel();
      }
    } catch (e) {
      if (stopped) return;
      why = `the events stream failed: ${(e as Error).message}`;
    }
    mode('polling', why);
    startPolling();
    retryTimer = setTimeout(() => void stream(), retry);
  };

  mode('polling', 'waiting for the events stream');
  startPolling();
  void stream();
  return () => {
    stopped = true;
    stopPolling();
    clearTimeout(retryTimer);
    abort.abort();
  };
}
