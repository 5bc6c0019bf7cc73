/**
 * QEMU facts for the vm executor: where the binary is, its version, whether KVM really runs guests
 * here, and the command line of one microVM.
 */
import { FILES_DISK_SERIAL } from './files-disk.ts';
import { createHash } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GuestNic } from './network.ts';

export type Accel = 'kvm' | 'tcg';

/** `qemu-system-x86_64` on PATH, or undefined. */
export function findQemu(pathEnv = process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'): string | undefined {
  for (const dir of pathEnv.split(':')) {
    if (!dir) continue;
    const p = join(dir, 'qemu-system-x86_64');
    try { accessSync(p, constants.X_OK); return p; } catch { /* next */ }
  }
  return undefined;
}

/** Run `argv` with no input, bounded; its exit code (null when killed at the bound) and output. */
export async function runBounded(argv: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  const proc = Bun.spawn(argv, { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; proc.kill('SIGKILL'); }, timeoutMs);
  try {
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { code: timedOut ? null : proc.exitCode, out: (out + err).trim() };
  } finally { clearTimeout(timer); }
}

/** "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)" from `--version`; throws with QEMU's words. */
export async function qemuVersion(binary: string): Promise<string> {
  const { code, out } = await runBounded([binary, '--version'], 3_000);
  const m = /version\s+(\S+(?:\s+\([^)]*\))?)/.exec(out);
  if (code !== 0 || !m) throw new Error(`${binary} --version: ${code === null ? 'no answer within 3 s' : out.split('\n')[0] || `exit code ${code}`}`);
  return m[1]!;
}

export interface AccelChoice { accel: Accel; kvm: string }

/**
 * KVM when it demonstrably runs guests, else TCG. `/dev/kvm` existing and QEMU initialising KVM is
 * not enough: under nested virtualisation KVM can initialise and then never get a guest through
 * boot. With `probeKernel`, the probe boots that kernel without a root filesystem under KVM and
 * requires the resulting panic-and-exit within `timeoutMs` (a working KVM takes well under a second).
 * Without it, the probe only proves that QEMU initialises KVM. `kvm` says what was found.
 */
export async function chooseAccel(binary: string, probeKernel?: string, timeoutMs = 3_000): Promise<AccelChoice> {
  try { closeSync(openSync('/dev/kvm', 'r+')); } catch (err) {
    return { accel: 'tcg', kvm: `unusable: /dev/kvm: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  if (probeKernel && existsSync(probeKernel)) {
    const { code, out } = await runBounded([
      binary, '-M', 'microvm,pit=on,pic=on,rtc=on', '-accel', 'kvm', '-cpu', 'host', '-m', '128',
      '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
      '-kernel', probeKernel, '-append', 'panic=-1 reboot=t quiet',
    ], timeoutMs);
    if (code === 0) return { accel: 'kvm', kvm: 'usable (booted a probe kernel)' };
    return { accel: 'tcg', kvm: `unusable: ${code === null ? `a probe kernel did not boot within ${timeoutMs} ms` : lastLine(out)}` };
  }
  // QMP on stdin: initialise KVM with the guest paused, then quit. `-cpu host` as a task's VM has:
  // under some nested hypervisors KVM initialises but setting the host CPU's MSRs aborts QEMU.
  const proc = Bun.spawn([binary, '-M', 'microvm', '-accel', 'kvm', '-cpu', 'host', '-S', '-nodefaults', '-no-user-config', '-display', 'none', '-qmp', 'stdio'], {
    stdin: 'pipe', stdout: 'pipe', stderr: 'pipe',
  });
  proc.stdin.write('{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n');
  proc.stdin.end();
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const [, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  if (proc.exitCode === 0) return { accel: 'kvm', kvm: 'usable (initialised; no probe kernel to boot)' };
  return { accel: 'tcg', kvm: `unusable: ${lastLine(err) || `qemu exit code ${proc.exitCode}`}` };
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n').filter((l) => !/warning:/.test(l));
  return (lines.at(-1) ?? '').trim();
}

/**
 * Where a task's QMP socket lives: in its task directory, unless that path would not fit in a
 * unix socket address (108 bytes), then in the temp dir under a name derived from the task dir —
 * derived, so a fresh controller finds it again.
 */
export function qmpSocketPath(taskDir: string): string {
  const inDir = join(taskDir, 'qmp.sock');
  if (Buffer.byteLength(inDir) < 100) return inDir;
  return join(tmpdir(), `shoal-qmp-${createHash('sha256').update(taskDir).digest('hex').slice(0, 20)}.sock`);
}

export interface MicroVm {
  binary: string;
  accel: Accel;
  vcpus: number;
  memoryMiB: number;
  kernel?: string;
  initrd?: string;
  disk?: string;
  cmdline?: string;
  qmpSocket: string;
  /** The host's TSC rate under TCG, given to the guest (see `tcgCmdline`). */
  tscKhz?: number;
  /** The guest's network interfaces: taps the executor made (network.ts), in attachment order. */
  nics?: GuestNic[];
  /** The task's secrets and configs as a tar archive (files-disk.ts), attached read-only. */
  filesDisk?: string;
  /** What the guest is told about its networks (`networkCmdline`), before the spec's Cmdline. */
  netCmdline?: string;
}

/** The fw_cfg item with the guest's network words (README.md, "Networks"). */
export const NETWORK_FW_CFG = 'opt/org.shoal/network';

/** Always on the guest kernel's command line; the spec's Cmdline comes after, so it can override. */
export const BASE_CMDLINE = 'console=ttyS0 reboot=t panic=-1 quiet';

/**
 * The host CPU's clock in kHz from /proc/cpuinfo, or undefined. Under TCG the guest's TSC counts
 * at the host's rate, and a guest kernel calibrating it against the emulated PIT can stall for
 * good when the host is busy (no clock source, time stuck at 0.000000): telling it the rate
 * (`tsc_early_khz`) skips the calibration.
 */
export function hostTscKhz(cpuinfo = readCpuinfo()): number | undefined {
  const m = /^cpu MHz\s*:\s*([\d.]+)/m.exec(cpuinfo);
  const khz = m ? Math.round(Number(m[1]) * 1000) : NaN;
  return Number.isFinite(khz) && khz > 0 ? khz : undefined;
}

function readCpuinfo(): string {
  try { return readFileSync('/proc/cpuinfo', 'utf8'); } catch { return ''; }
}

/** The kernel command line: ours, the networks', then the spec's (which may override ours). */
export function kernelCmdline(vm: Pick<MicroVm, 'accel' | 'tscKhz' | 'cmdline' | 'netCmdline'>): string {
  const parts = [BASE_CMDLINE];
  if (vm.accel === 'tcg' && vm.tscKhz) parts.push(`tsc_early_khz=${vm.tscKhz}`);
  if (vm.netCmdline) parts.push(vm.netCmdline);
  if (vm.cmdline) parts.push(vm.cmdline);
  return parts.join(' ');
}

/**
 * The QEMU command of one microVM. The serial console is QEMU's stdout (the shim turns it into the
 * task's log); `-no-reboot` turns the guest's reboot, triple fault (`reboot=t`) or panic
 * (`panic=-1`) into QEMU exiting, as is powering off.
 */
export function qemuArgv(vm: MicroVm): string[] {
  // Without the PIT the guest's TSC calibration hangs under TCG.
  const argv = [
    vm.binary, '-M', 'microvm,pit=on,pic=on,rtc=on', '-accel', vm.accel, '-cpu', vm.accel === 'kvm' ? 'host' : 'max',
    '-smp', String(vm.vcpus), '-m', String(vm.memoryMiB),
    '-nodefaults', '-no-user-config', '-nographic', '-no-reboot',
    '-serial', 'stdio', '-monitor', 'none',
    '-qmp', `unix:${vm.qmpSocket},server=on,wait=off`,
  ];
  if (vm.kernel) {
    argv.push('-kernel', vm.kernel, '-append', kernelCmdline(vm));
    if (vm.initrd) argv.push('-initrd', vm.initrd);
  }
  if (vm.disk) {
    argv.push('-drive', `id=disk0,file=${vm.disk},format=raw,if=none`, '-device', 'virtio-blk-device,drive=disk0');
  }
  if (vm.filesDisk) {
    argv.push('-drive', `id=files,file=${vm.filesDisk},format=raw,if=none,readonly=on`, '-device', `virtio-blk-device,drive=files,serial=${FILES_DISK_SERIAL}`);
  }
  // microvm has no PCI: virtio-net on virtio-mmio (`-device virtio-net-device`). `host_mtu` tells
  // the guest driver the MTU (VIRTIO_NET_F_MTU), so the overlay's 1450 needs no guest config.
  // The same words as on the kernel command line, for a Disk's own bootloader and init to read
  // (/sys/firmware/qemu_fw_cfg/by_name/opt/org.shoal/network/raw). Commas are doubled for QEMU.
  if (vm.netCmdline) argv.push('-fw_cfg', `name=${NETWORK_FW_CFG},string=${vm.netCmdline.replaceAll(',', ',,')}`);
  (vm.nics ?? []).forEach((nic, i) => {
    argv.push(
      '-netdev', `tap,id=net${i},ifname=${nic.tap},script=no,downscript=no`,
      '-device', `virtio-net-device,netdev=net${i},mac=${nic.mac},host_mtu=${nic.mtu}`,
    );
  });
  return argv;
}
