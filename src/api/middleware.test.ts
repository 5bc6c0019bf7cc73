import { afterEach, expect, spyOn, test } from 'bun:test';
import { Hono } from 'hono';
import { onError } from './middleware.ts';

let restore: (() => void) | undefined;
afterEach(() => restore?.());

function appThrowing(err: Error): Hono {
  const app = new Hono();
  app.onError(onError);
  app.get('/x', () => {
    throw err;
  });
  return app;
}

test('an unexpected error is logged and answered 500 with its message', async () => {
  const spy = spyOn(console, 'error').mockImplementation(() => {});
  restore = () => spy.mockRestore();
  const r = await appThrowing(new Error('boom')).request('/x');
  expect(r.status).toBe(500);
  expect(((await r.json()) as { message: string }).message).toBe('boom');
  expect(spy).toHaveBeenCalledTimes(1);
});

test('the AbortError of a request whose client hung up is not logged as unexpected', async () => {
  const spy = spyOn(console, 'error').mockImplementation(() => {});
  restore = () => spy.mockRestore();
  const gone = new AbortController();
  gone.abort();
  const r = await appThrowing(new DOMException('The connection was closed.', 'AbortError')).request(new Request('http://localhost/x', { signal: gone.signal }));
  expect(r.status).toBe(500);
  expect(spy).not.toHaveBeenCalled();
  // The same error while the client still waits is logged: it is not the client's doing then.
  await appThrowing(new DOMException('aborted', 'AbortError')).request('/x');
  expect(spy).toHaveBeenCalledTimes(1);
});
