import { expect, test } from 'bun:test';
import { BASE_CMDLINE, hostTscKhz, kernelCmdline, qemuArgv, qmpSocketPath } from './qemu.ts';

test('the host clock rate comes from /proc/cpuinfo, or nothing', () => {
  expect(hostTscKhz('model name\t: AMD EPYC\ncpu MHz\t\t: 2445.404\n')).toBe(2445404);
  expect(hostTscKhz('processor : 0\n')).toBeUndefined();
});

test('the kernel command line: ours, the TSC rate under TCG only, then the spec\'s', () => {
  expect(kernelCmdline({ accel: 'tcg', tscKhz: 2000000, cmdline: 'init=/x' })).toBe(`${BASE_CMDLINE} tsc_early_khz=2000000 init=/x`);
  expect(kernelCmdline({ accel: 'kvm', tscKhz: 2000000 })).toBe(BASE_CMDLINE);
});

test('a microVM command line: size, console on stdout, QMP socket, kernel or disk', () => {
  const argv = qemuArgv({ binary: 'q', accel: 'tcg', vcpus: 2, memoryMiB: 256, kernel: '/k', initrd: '/i', qmpSocket: '/t/qmp.sock' });
  const after = (flag: string) => argv[argv.indexOf(flag) + 1];
  expect(after('-smp')).toBe('2');
  expect(after('-m')).toBe('256');
  expect(after('-cpu')).toBe('max');
  expect(after('-serial')).toBe('stdio');
  expect(after('-qmp')).toBe('unix:/t/qmp.sock,server=on,wait=off');
  expect(after('-initrd')).toBe('/i');
  expect(argv).toContain('-no-reboot');
  const disk = qemuArgv({ binary: 'q', accel: 'kvm', vcpus: 1, memoryMiB: 128, disk: '/d.img', qmpSocket: '/s' });
  expect(disk).not.toContain('-kernel');
  expect(disk[disk.indexOf('-drive') + 1]).toBe('id=disk0,file=/d.img,format=raw,if=none');
});

test('a QMP socket path too long for a unix address moves to the temp dir, stably', () => {
  expect(qmpSocketPath('/short')).toBe('/short/qmp.sock');
  const long = `/${'x'.repeat(120)}`;
  expect(qmpSocketPath(long)).toBe(qmpSocketPath(long));
  expect(Buffer.byteLength(qmpSocketPath(long))).toBeLessThan(108);
});
