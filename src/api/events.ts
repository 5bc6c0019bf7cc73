/**
 * `GET /events`, as Docker: one JSON object per line. With `until` in the past the history is
 * answered and the stream ends; otherwise it stays open (until `until`, or the client goes away).
 * Served by every manager from its own replica of the log (docs/api.md, "Events").
 */
import { Hono } from 'hono';
import type { ApiDeps } from './deps.ts';
import { isDockerCli } from './docker-compat.ts';
import { eventLine } from './event-derive.ts';
import { eventQuery } from './event-filter.ts';
import { EventLog } from './event-log.ts';

/** A timer cannot wait longer than this (2^31-1 ms); a farther `until` is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function eventsRoutes(deps: ApiDeps, log = new EventLog(deps.store)): Hono {
  const app = new Hono();

  app.get('/events', (c) => {
    const q = eventQuery({ since: c.req.query('since'), until: c.req.query('until'), filters: c.req.query('filters') });
    const nowNano = BigInt(Date.now()) * 1_000_000n;
    const docker = isDockerCli(c);
    const live = q.untilNano === undefined || q.untilNano > nowNano;
    // Subscribed before the replay is read, in the same turn: no event falls between the two.
    const sub = live ? log.subscribe((e) => q.match(e) && (q.untilNano === undefined || e.timeNano <= q.untilNano)) : null;
    const past = q.sinceNano !== undefined || q.untilNano !== undefined ? log.replay(q.sinceNano ?? 0n, q.untilNano).filter(q.match) : [];
    if (live) (c.env as { timeout?(req: Request, seconds: number): void } | undefined)?.timeout?.(c.req.raw, 0);
    const enc = new TextEncoder();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const end = () => {
      clearTimeout(timer);
      sub?.close();
    };
    if (sub && q.untilNano !== undefined) {
      const arm = () => {
        const left = Number((q.untilNano! - BigInt(Date.now()) * 1_000_000n) / 1_000_000n);
        timer = left <= 0 ? (sub.close(), undefined) : setTimeout(arm, Math.min(left + 1, MAX_TIMER_MS));
      };
      arm();
    }
    c.req.raw.signal.addEventListener('abort', end, { once: true });

    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        // Bun ends the header block only with the first byte of the body: without history, a blank
        // line (which JSON-lines readers skip; Docker's decoder skips whitespace) lets the client
        // see the 200 at once rather than at the first event.
        controller.enqueue(enc.encode(past.length ? past.map(eventLine).join('') : '\n'));
        if (!sub) controller.close();
      },
      async pull(controller) {
        if (!sub) return;
        const batch = await sub.take();
        if (batch.length) return controller.enqueue(enc.encode(batch.map(eventLine).join('')));
        if (sub.lagged && !docker) {
          controller.enqueue(enc.encode(`${JSON.stringify({ error: `this client fell more than ${sub.bound} events behind; the stream is closed (ask again with since= to resume)` })}\n`));
        }
        end();
        try {
          controller.close();
        } catch {} // already cancelled by the client
      },
      cancel: end,
    }, { highWaterMark: 0 });
    return new Response(stream, { status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'no-cache' } });
  });

  return app;
}
