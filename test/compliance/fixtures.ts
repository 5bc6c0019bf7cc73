/** Test helpers shared by executor tests: tasks, contexts and temp directories. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TaskContext } from '../../src/executor/contract.ts';
import type { Task, TaskSpec } from '../../src/types/index.ts';

let seq = 0;

export function makeTask(spec: TaskSpec, id = `task${Date.now().toString(36)}${(seq++).toString(36)}`): Task {
  const now = new Date().toISOString();
  return {
    ID: id, Version: { Index: 1 }, CreatedAt: now, UpdatedAt: now,
    Spec: spec, ServiceID: 'svc1', Slot: 1, NodeID: 'node1',
    Status: { Timestamp: now, State: 'assigned', Message: '' },
    DesiredState: 'running',
  };
}

/** A fresh temporary directory, removed by `dispose`. */
export function tempDir(prefix = 'shoal-exec-'): { path: string; [Symbol.dispose](): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }) };
}

export function makeContext(taskDir: string, log: string[] = []): TaskContext {
  return { taskDir, log: (m) => log.push(m) };
}

/** Collect an async iterable into an array, bounded by a timeout. */
export async function collect<T>(it: AsyncIterable<T>, timeoutMs = 10_000): Promise<T[]> {
  const out: T[] = [];
  const timeout = new Promise<never>((_, reject) => {
    const t = setTimeout(() => reject(new Error(`collect: no end after ${timeoutMs} ms`)), timeoutMs);
    (t as { unref?: () => void }).unref?.();
  });
  await Promise.race([(async () => { for await (const v of it) out.push(v); })(), timeout]);
  return out;
}

/** Wait until `check()` is truthy, polling; fails after `timeoutMs`. */
export async function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
