import { expect, test } from 'bun:test';
import type { TaskNetworkAttachment } from '../../src/executor/contract.ts';
import { firstAddress, guestNics, netmaskOf, networkCmdline, tapName, tapPrefix } from './network.ts';
import { BASE_CMDLINE, hostTscKhz, kernelCmdline, NETWORK_FW_CFG, qemuArgv, qmpSocketPath } from './qemu.ts';

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

const attachment = (n: number, more: Partial<TaskNetworkAttachment> = {}): TaskNetworkAttachment => ({
  networkId: `n${n}`, name: `net${n}`, bridge: `shb-${n}`, subnet: `10.0.${n}.0/24`, gateway: `10.0.${n}.1`,
  address: `10.0.${n}.5/24`, mac: `02:42:0A:00:0${n}:05`, mtu: 1450, ...more,
});

test('tap names: from the task ID and the attachment index, at most 15 bytes, the same on every call', () => {
  expect(tapName('task1', 0)).toMatch(/^sht[0-9a-f]{8}0$/);
  expect(tapName('task1', 0)).toBe(tapName('task1', 0));
  expect(tapName('task1', 0)).not.toBe(tapName('task2', 0));
  expect(tapName('task1', 3).startsWith(tapPrefix('task1'))).toBe(true);
  expect(Buffer.byteLength(tapName('x'.repeat(200), 9999))).toBeLessThanOrEqual(15);
  expect(() => tapName('task1', 10000)).toThrow();
});

test('the guest\'s network words: ip= for the first attachment, shoal.net<i> for each, shoal.dns', () => {
  expect(netmaskOf(24)).toBe('255.255.255.0');
  expect(netmaskOf(20)).toBe('255.255.240.0');
  expect(netmaskOf(32)).toBe('255.255.255.255');
  expect(netmaskOf(0)).toBe('0.0.0.0');
  const net = { attachments: [attachment(1), attachment(2, { address: '10.0.2.9/16', mtu: 1400 })], dns: ['10.0.1.1', '1.1.1.1', '8.8.8.8'] };
  expect(networkCmdline(net, 'host1').split(' ')).toEqual([
    'ip=10.0.1.5::10.0.1.1:255.255.255.0:host1:eth0:off:10.0.1.1:1.1.1.1',
    'shoal.net0=10.0.1.5/24,02:42:0a:00:01:05,10.0.1.1,1450',
    'shoal.net1=10.0.2.9/16,02:42:0a:00:02:05,10.0.2.1,1400',
    'shoal.dns=10.0.1.1,1.1.1.1,8.8.8.8',
  ]);
  expect(networkCmdline({ attachments: [attachment(1)], dns: [] }, 'h')).toBe('ip=10.0.1.5::10.0.1.1:255.255.255.0:h:eth0:off shoal.net0=10.0.1.5/24,02:42:0a:00:01:05,10.0.1.1,1450');
  expect(firstAddress(net)).toBe('10.0.1.5');
  expect(firstAddress(undefined)).toBeUndefined();
  expect(firstAddress({ attachments: [], dns: [] })).toBeUndefined();
});

test('a microVM on networks: a virtio-mmio NIC per tap with its MAC and MTU; the words before the spec\'s Cmdline and in fw_cfg', () => {
  const nics = guestNics('task1', { attachments: [attachment(1), attachment(2)], dns: [] });
  const argv = qemuArgv({ binary: 'q', accel: 'kvm', vcpus: 1, memoryMiB: 128, kernel: '/k', qmpSocket: '/s', nics, netCmdline: 'ip=x shoal.net0=a,b', cmdline: 'init=/x' });
  const all = (flag: string) => argv.flatMap((a, i) => (a === flag ? [argv[i + 1]] : []));
  expect(all('-netdev')).toEqual([0, 1].map((i) => `tap,id=net${i},ifname=${tapName('task1', i)},script=no,downscript=no`));
  expect(all('-device')).toEqual([
    'virtio-net-device,netdev=net0,mac=02:42:0a:00:01:05,host_mtu=1450',
    'virtio-net-device,netdev=net1,mac=02:42:0a:00:02:05,host_mtu=1450',
  ]);
  expect(all('-append')).toEqual([`${BASE_CMDLINE} ip=x shoal.net0=a,b init=/x`]);
  expect(all('-fw_cfg')).toEqual([`name=${NETWORK_FW_CFG},string=ip=x shoal.net0=a,,b`]);
  const plain = qemuArgv({ binary: 'q', accel: 'kvm', vcpus: 1, memoryMiB: 128, kernel: '/k', qmpSocket: '/s' });
  expect(plain).not.toContain('-netdev');
  expect(plain).not.toContain('-fw_cfg');
});
