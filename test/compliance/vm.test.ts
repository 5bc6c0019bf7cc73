/**
 * The vm executor passes the executor compliance suite by booting real tiny VMs: Debian's cloud
 * kernel (extracted by .ci/install-qemu.sh) and a busybox initramfs made at test time
 * (test/fixtures/vm/guest.ts). Without QEMU, the kernel or a static busybox the suite is skipped,
 * and the reason printed.
 */
import { describe, test } from 'bun:test';
import { resolve } from 'node:path';
import { createVmExecutor } from '../../plugins/vm/index.ts';
import { guestAssets, guestSpec } from '../fixtures/vm/guest.ts';
import { executorCompliance } from './executor-suite.ts';

const assets = guestAssets();
const shim = [process.execPath, resolve(import.meta.dir, '../../plugins/process/shim-entry.ts')];

if (typeof assets === 'object') {
  const vm = (cmd: string) => guestSpec(assets, cmd);
  executorCompliance('vm', () => createVmExecutor({ shimCommand: shim, probeKernel: assets.kernel }), {
    exitZero: vm('echo one; echo two; sleep 0.2; echo three'),
    exitThree: vm('exit 3'),
    longRunning: vm('echo up; exec sleep 1000'),
    ignoresStop: vm("trap '' TERM; echo up; while :; do sleep 0.05; done"),
    // Passes validation and prepare (the file exists) but is no kernel: QEMU refuses to boot it.
    startFails: { Runtime: 'vm', VMSpec: { Kernel: '/etc/hostname' } },
    invalid: { spec: { Runtime: 'vm', VMSpec: {} }, field: 'VMSpec.Kernel' },
  }, { testTimeoutMs: 60_000 });
} else {
  describe('executor compliance: vm', () => {
    test.skip(`needs QEMU and a guest kernel: ${assets}`, () => {});
  });
}
