/**
 * The web UI: one page and one script, both inside the executable, served by the same app as the API
 * (so on the unix socket and on the mutual-TLS TCP listener, with the same client roles: a read-only
 * bundle sees the UI, and its actions get the API's 403). The page calls the API routes themselves.
 */
import { Hono } from 'hono';
import pageText from '../ui/index.html' with { type: 'text' };
import { uiScript } from './ui-bundle.ts' with { type: 'macro' };

// bun-types declare an .html import as a page to bundle; `type: 'text'` makes it the file's text.
const page = pageText as unknown as string;
const script: string = uiScript();

/** Only this origin's script and API: nothing is fetched from elsewhere, nothing inline runs. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function uiRoutes(): Hono {
  const app = new Hono();
  const headers = (type: string) => ({ 'content-type': type, 'cache-control': 'no-cache', 'content-security-policy': CSP, 'x-content-type-options': 'nosniff' });
  app.get('/', (c) => c.redirect('/ui/', 302));
  app.get('/ui', (c) => c.redirect('/ui/', 302));
  app.get('/ui/', (c) => c.body(page, 200, headers('text/html; charset=utf-8')));
  app.get('/ui/app.js', (c) => c.body(script, 200, headers('text/javascript; charset=utf-8')));
  return app;
}
