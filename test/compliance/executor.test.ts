/** Every built-in executor passes the same compliance suite. */
import { resolve } from 'node:path';
import { createMockExecutor } from '../../plugins/mock/index.ts';
import { createProcessExecutor } from '../../plugins/process/index.ts';
import { nativeTestShim } from '../../plugins/process/testdata/shims.ts';
import { executorCompliance } from './executor-suite.ts';

const ms = (n: number) => n * 1_000_000;

executorCompliance('mock', () => createMockExecutor(), {
  exitZero: { Runtime: 'mock', MockSpec: { RunFor: ms(200) } },
  exitThree: { Runtime: 'mock', MockSpec: { RunFor: ms(20), ExitCode: 3 } },
  longRunning: { Runtime: 'mock', MockSpec: {} },
  ignoresStop: { Runtime: 'mock', MockSpec: { IgnoreStop: true } as object },
  startFails: { Runtime: 'mock', MockSpec: { StartError: 'no such program' } },
  invalid: { spec: { Runtime: 'mock', MockSpec: { ExitCode: -1 } }, field: 'MockSpec.ExitCode' },
});

const shim = [process.execPath, resolve(import.meta.dir, '../../plugins/process/shim-entry.ts')];
const sh = (script: string) => ({ Runtime: 'process', ProcessSpec: { Command: ['/bin/sh', '-c', script] } });

const processSpecs = {
  exitZero: sh('echo one; echo two >&2; sleep 0.2; echo three'),
  exitThree: sh('exit 3'),
  longRunning: sh('echo up; exec sleep 1000'),
  ignoresStop: sh("trap '' TERM; echo up; while :; do sleep 0.05; done"),
  startFails: { Runtime: 'process', ProcessSpec: { Command: ['/nonexistent/program'] } },
  invalid: { spec: { Runtime: 'process', ProcessSpec: { Command: [] } }, field: 'ProcessSpec.Command' },
};
executorCompliance('process', () => createProcessExecutor({ shimCommand: shim }), processSpecs);

// The native shim (plugins/process/native/shim.c) keeps the same contract.
const native = await nativeTestShim();
if (typeof native === 'string') console.warn(`process (native shim): not run: ${native}`);
// Started through its launcher, as the daemon starts it (plugins/process/launcher.ts).
else executorCompliance('process', () => createProcessExecutor({ shimCommand: native, shimLauncher: true }), processSpecs, { variant: 'native shim' });
