/** The agent with the real process executor: real programs, real stop, logs through the dispatcher. */
import { afterEach, beforeEach, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ManualClock } from '../../plugins/mock/clock.ts';
import { createProcessExecutor } from '../../plugins/process/index.ts';
import { ExecutorCatalog } from '../executor/catalog.ts';
import { memoryConnPair } from '../manager/dispatcher/conn.ts';
import { Dispatcher } from '../manager/dispatcher/dispatcher.ts';
import { addNode, addTasks, description, makeTask, waitFor } from '../manager/dispatcher/testkit.ts';
import { memoryStore, type MemoryStore } from '../store/index.ts';
import type { TaskState } from '../types/index.ts';
import { Agent } from './agent.ts';

const shim = [process.execPath, resolve(import.meta.dir, '../../plugins/process/shim-entry.ts')];
let dir: string;
let store: MemoryStore;
let dispatcher: Dispatcher;
let agent: Agent;
let nodeId: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-agent-process-'));
  store = memoryStore();
  const clock = new ManualClock(0);
  dispatcher = new Dispatcher({ store, clock });
  dispatcher.start();
  nodeId = await addNode(store);
  agent = new Agent({
    nodeId,
    dataDir: dir,
    catalog: new ExecutorCatalog([createProcessExecutor({ shimCommand: shim })]),
    connect: async () => {
      const [worker, manager] = memoryConnPair();
      dispatcher.accept(manager);
      return worker;
    },
    description: () => description(),
    clock,
  });
  await agent.start();
});

afterEach(async () => {
  await agent.stop();
  await dispatcher.stop();
  rmSync(dir, { recursive: true, force: true });
});

const stateOf = (id: string): TaskState => store.get('tasks', id)!.Status.State;
const reaches = (id: string, s: TaskState) => waitFor(() => stateOf(id) === s, `task ${id} ${s} (is ${stateOf(id)})`, 15_000);

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

test('a process task runs to completion and its output is readable through the dispatcher', async () => {
  const [t] = await addTasks(store, [makeTask(nodeId, { spec: { Runtime: 'process', ProcessSpec: { Command: ['/bin/sh', '-c', 'echo hello from $0; echo task $SHOAL_TASK_ID; exit 0'] } } })]);
  await reaches(t!.ID, 'complete');
  expect(store.get('tasks', t!.ID)!.Status.ContainerStatus?.ExitCode).toBe(0);
  const lines: string[] = [];
  for await (const l of dispatcher.taskLogs(t!.ID)) lines.push(l.line);
  expect(lines).toContain('hello from /bin/sh');
  expect(lines).toContain(`task ${t!.ID}`);
}, 20_000);

test('agent.stop() stops a running process and reports it shut down', async () => {
  const [t] = await addTasks(store, [makeTask(nodeId, { spec: { Runtime: 'process', ProcessSpec: { Command: ['/bin/sh', '-c', 'echo $$ > pid; exec sleep 100'] } } })]);
  await reaches(t!.ID, 'running');
  const pidFile = join(dir, 'tasks', t!.ID, 'work', 'pid');
  await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '', 'pid file', 10_000);
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  expect(pidAlive(pid)).toBe(true);
  expect(store.get('tasks', t!.ID)!.Status.ContainerStatus?.PID).toBe(pid); // exec: the shell became sleep
  await agent.stop();
  expect(stateOf(t!.ID)).toBe('shutdown');
  expect(pidAlive(pid)).toBe(false);
}, 20_000);
