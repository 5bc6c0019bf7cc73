/**
 * npm run bench [-- NAME...]: runs the benchmarks and writes bench/results/<name>.json with the
 * machine's details. Each benchmark prints its figures next to the target or anchor it names.
 */
import { writeResult } from './lib.ts';

const all: Record<string, () => Promise<unknown>> = {
  store: async () => (await import('./store.ts')).run(),
  daemon: async () => (await import('./daemon.ts')).run(),
  footprint: async () => (await import('./footprint.ts')).run(),
  raft: async () => (await import('./raft.ts')).run(),
  mesh: async () => (await import('./mesh.ts')).run(),
  vip: async () => (await import('./vip.ts')).run(),
  net: async () => (await import('./net.ts')).run(),
  executors: async () => (await import('./executors.ts')).run(),
  fleet: async () => (await import('./fleet.ts')).run(),
  sessions: async () => (await import('./sessions.ts')).run(),
  'rolling-update': async () => (await import('./rolling-update.ts')).run(),
  'docker-service-update': async () => (await import('./docker-service-update.ts')).run(),
  'process-footprint': async () => (await import('./process-footprint.ts')).run(),
  'manager-scale': async () => (await import('./manager-scale.ts')).run(),
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = wanted.length ? wanted : Object.keys(all);
let failed = 0;
for (const name of names) {
  const fn = all[name];
  if (!fn) {
    console.error(`unknown benchmark "${name}"; known: ${Object.keys(all).join(', ')}`);
    process.exit(2);
  }
  try {
    const result = await fn();
    console.log(`  → ${writeResult(name, result)}\n`);
  } catch (e) {
    failed++;
    console.error(`benchmark ${name} failed: ${e instanceof Error ? e.stack : e}\n`);
  }
}
process.exit(failed ? 1 : 0);
