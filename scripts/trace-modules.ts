/**
 * A build plugin for finding out what a daemon evaluates (issue #18): `bun build.ts --trace-modules`
 * makes every bundled module note itself, with the process's RSS at that moment, when it is
 * evaluated. A daemon started with SHOAL_TRACE_MODULES=/some/prefix writes that list to
 * `<prefix>.<pid>` after SHOAL_TRACE_MODULES_MS (default 10 000) ms,
 * and to `<prefix>.heap.<pid>` what the JS heap holds then (after a full collection). Never for a release build: each
 * module's first line changes.
 */
import type { BunPlugin } from 'bun';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

const root = `${import.meta.dir}/..`;

/** The line put first in each module: `[path, rss bytes]` onto one list, which is written out on a timer. */
export function traceLine(path: string): string {
  return `(globalThis.__shoalTrace ??= (() => { const a = []; const p = globalThis.process.env.SHOAL_TRACE_MODULES;` +
    ` if (p) setTimeout(() => { const j = require('bun:jsc'); Bun.gc(true); const h = j.heapStats(); const t = Object.entries(h.objectTypeCounts).sort((x, y) => y[1] - x[1]).slice(0, 40);` +
    ` require('node:fs').writeFileSync(p + '.heap.' + globalThis.process.pid, JSON.stringify({ memoryUsage: globalThis.process.memoryUsage(), heapSize: h.heapSize, heapCapacity: h.heapCapacity, extraMemorySize: h.extraMemorySize, objectCount: h.objectCount, protectedObjectCount: h.protectedObjectCount, memory: j.memoryUsage(), top: t }, null, 1)); if (globalThis.process.env.SHOAL_TRACE_SNAPSHOT) require('node:fs').writeFileSync(p + '.snap.' + globalThis.process.pid, JSON.stringify(Bun.generateHeapSnapshot())); require('node:fs').writeFileSync(p + '.' + globalThis.process.pid, a.map((e) => e.join('\\t')).join('\\n') + '\\n'); },` +
    ` Number(globalThis.process.env.SHOAL_TRACE_MODULES_MS ?? 10000)).unref(); const sh = globalThis.process.env.SHOAL_TRY_SHRINK_MS; if (sh) setTimeout(() => { Bun.gc(true); Bun.shrink(); }, Number(sh)).unref(); return a; })())` +
    `.push([${JSON.stringify(path)}, globalThis.process.memoryUsage.rss()]);\n`;
}

export const traceModules: BunPlugin = {
  name: 'shoal-trace-modules',
  setup(build) {
    build.onLoad({ filter: /\.(m?[jt]sx?|cjs)$/ }, (args) => {
      let text = readFileSync(args.path, 'utf8');
      if (text.startsWith('#!')) text = text.slice(text.indexOf('\n') + 1);
      const ext = /\.(m?ts|tsx)$/.test(args.path) ? (args.path.endsWith('x') ? 'tsx' : 'ts') : args.path.endsWith('x') ? 'jsx' : 'js';
      return { loader: ext, contents: traceLine(relative(root, args.path)) + text };
    });
  },
};
