/**
 * The vm executor with real tiny VMs (see test/fixtures/vm/guest.ts), beyond the compliance suite:
 * the task's resources size the guest, the console is the log, the guest's exit status is the
 * task's, and stop is a graceful power-off. Skipped, with the reason, without QEMU or a kernel.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { collect, makeContext, makeTask, tempDir, waitFor } from '../../test/compliance/fixtures.ts';
import { guestAssets, guestSpec } from '../../test/fixtures/vm/guest.ts';
import { path, readJson, type ShimSpec } from '../process/files.ts';
import { createVmExecutor } from './index.ts';

const assets = guestAssets();
const shim = [process.execPath, resolve(import.meta.dir, '../process/shim-entry.ts')];
const ac = () => new AbortController().signal;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

if (typeof assets === 'string') {
  describe('vm executor with real VMs', () => { test.skip(`needs QEMU and a guest kernel: ${assets}`, () => {}); });
} else {
  const exec = createVmExecutor({ shimCommand: shim, probeKernel: assets.kernel });
  let lastTaskDir = '';
  const boot = async (cmd: string, resources?: { NanoCPUs?: number; MemoryBytes?: number }) => {
    const dir = tempDir();
    lastTaskDir = `${dir.path}/task`;
    const spec = { ...guestSpec(assets, cmd), ...(resources ? { Resources: { Limits: resources } } : {}) };
    const ctl = exec.controller(makeTask(spec), makeContext(`${dir.path}/task`));
    cleanups.push(() => dir[Symbol.dispose](), () => ctl.remove());
    await ctl.prepare(ac());
    await ctl.start(ac());
    return ctl;
  };

  describe('vm executor with real VMs', () => {
    test('Resources.Limits size the guest; its console is the log; its exit code is the task\'s', async () => {
      const ctl = await boot('echo cpus=$(grep -c ^processor /proc/cpuinfo) mem=$(awk \'/MemTotal/ {print $2}\' /proc/meminfo); exit 7', {
        NanoCPUs: 2e9, MemoryBytes: 256 * 2 ** 20,
      });
      // The guest's RAM is not QEMU's cgroup limit: QEMU needs room of its own beyond it.
      const cg = readJson<ShimSpec>(path(lastTaskDir, 'spec'))?.cgroup;
      if (cg?.memory) expect(readFileSync(join(cg.memory, cg.mode === 'v2' ? 'memory.max' : 'memory.limit_in_bytes'), 'utf8').trim()).not.toBe(String(256 * 2 ** 20));
      const exit = await ctl.wait(AbortSignal.timeout(60_000));
      expect(exit).toEqual({ exitCode: 7, message: 'exit code 7' });
      const line = (await collect(ctl.logs({}))).map((l) => l.line).find((l) => l.startsWith('cpus='));
      const m = /^cpus=(\d+) mem=(\d+)$/.exec(line ?? '');
      expect(m).not.toBeNull();
      expect(Number(m![1])).toBe(2);
      // MemTotal is what the kernel keeps after its own reservations: most of 256 MiB, not 128.
      expect(Number(m![2])).toBeGreaterThan(180 * 1024);
      expect(Number(m![2])).toBeLessThanOrEqual(256 * 1024);
    }, 60_000);

    test('stop is a graceful power-off: the guest ends its program and reports it, no kill', async () => {
      const ctl = await boot('trap \'echo got TERM; exit 0\' TERM; echo up; while :; do sleep 0.05; done');
      await waitFor(async () => (await collect(ctl.logs({}))).some((l) => l.line === 'up'), 'the guest to be up', 60_000);
      await ctl.stop(30_000);
      const exit = await ctl.wait(AbortSignal.timeout(10_000));
      expect(exit).toEqual({ exitCode: 0, message: 'exit code 0' });
      expect((await collect(ctl.logs({}))).map((l) => l.line)).toContain('got TERM');
    }, 90_000);
  });
}
