/**
 * A stand-in daemon for the crash test: starts one process task through the real executor, says
 * "started", then idles until it is killed (the test kills it with SIGKILL).
 * Usage: bun fake-daemon.ts <task-dir> <task-json> [<task-network-json>]
 */
import type { TaskNetwork } from '../../../src/executor/contract.ts';
import type { Task } from '../../../src/types/index.ts';
import { createProcessExecutor } from '../index.ts';
import { testShim } from './shims.ts';

const [taskDir, taskJson, networkJson] = process.argv.slice(2);
const exec = createProcessExecutor({ shimCommand: await testShim() });
const ctl = exec.controller(JSON.parse(taskJson!) as Task, {
  taskDir: taskDir!, log: () => {}, ...(networkJson ? { network: JSON.parse(networkJson) as TaskNetwork } : {}),
});
const signal = AbortSignal.timeout(30_000);
await ctl.prepare(signal);
await ctl.start(signal);
process.stdout.write('started\n');
// Idle, bounded: a daemon the test forgot to kill goes away by itself.
setTimeout(() => process.exit(3), 60_000);
