/**
 * The container executor passes the executor compliance suite against a real Docker Engine. Without
 * an engine (or the local test image) the suite is skipped, and the reason printed.
 */
import { describe, test } from 'bun:test';
import { createContainerExecutor } from '../../plugins/container/index.ts';
import { engineForTests, TEST_IMAGE } from '../fixtures/images/engine.ts';
import { executorCompliance } from './executor-suite.ts';

const engine = await engineForTests();

const sh = (script: string, extra: object = {}) => ({
  Runtime: 'container', ContainerSpec: { Image: TEST_IMAGE, Command: ['/bin/sh', '-c', script], ...extra },
});

if (engine.ok) {
  executorCompliance('container', () => createContainerExecutor(), {
    exitZero: sh('echo one; echo two >&2; sleep 0.2; echo three'),
    exitThree: sh('exit 3'),
    // PID 1 gets no default signal handlers: an init forwards SIGTERM to the sleep, as a real image's would.
    longRunning: sh('echo up; exec sleep 1000', { Init: true }),
    ignoresStop: sh("trap '' TERM; echo up; while :; do sleep 0.05; done"),
    startFails: { Runtime: 'container', ContainerSpec: { Image: TEST_IMAGE, Command: ['/nonexistent/program'] } },
    invalid: { spec: { Runtime: 'container', ContainerSpec: { Image: '' } }, field: 'ContainerSpec.Image' },
  });
} else {
  describe('executor compliance: container', () => {
    test.skip(`needs a Docker Engine: ${engine.reason}`, () => {});
  });
}
