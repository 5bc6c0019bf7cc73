/**
 * The vm executor: each task is a QEMU `microvm` guest (plugins/vm/README.md). QEMU runs under the
 * process executor's shim, which keeps it alive across daemon restarts, turns its stdout — the
 * guest's serial console — into the task's log and records how QEMU ended. This controller adds
 * what is particular to VMs around a process controller for QEMU: the QEMU command line, a QMP
 * socket in the task directory (start waits for it; stop presses the ACPI power button through it),
 * and the guest's own exit status, read from its console (`SHOAL-EXIT <code>`). On overlay networks
 * (`TaskContext.network`) the guest gets a tap device on each network's bridge and its address on
 * the kernel command line (network.ts).
 */
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { writeFilesDisk } from './files-disk.ts';
import { cpus, totalmem } from 'node:os';
import type {
  Controller, Executor, ExecutorCapabilities, ExitStatus, Fingerprint, LogLine, LogOptions, TaskContext, TaskStats,
} from '../../src/executor/contract.ts';
import { PrepareError, StartError } from '../../src/executor/errors.ts';
import { pause, pollUntil } from '../../src/executor/logs.ts';
import type { Task, VMSpec } from '../../src/types/index.ts';
import { createProcessExecutor } from '../process/index.ts';
import { isAlive, path, readJson, type ExitRecord, type PidRecord } from '../process/files.ts';
import { killGroup } from '../process/shim.ts';
import { lastLogLines, qemuComplaint, vmExitStatus } from './console.ts';
import { qmp } from './qmp.ts';
import { ensureTaps, firstAddress, guestNics, networkCmdline, removeTaps } from './network.ts';
import { chooseAccel, findQemu, hostTscKhz, kernelCmdline, qemuArgv, qemuVersion, qmpSocketPath, type AccelChoice } from './qemu.ts';
import { validateVmSpec, vmSize } from './validate.ts';

export { validateVmSpec, vmSize } from './validate.ts';

export interface VmExecutorOptions {
  /** The QEMU binary. Default: `qemu-system-x86_64` on PATH. */
  qemuBinary?: string;
  /** `auto` (default; `SHOAL_VM_ACCEL` overrides): KVM when it demonstrably works, else TCG. */
  accel?: 'auto' | 'kvm' | 'tcg';
  /** A kernel the KVM probe boots (see `chooseAccel`). Default: `SHOAL_VM_PROBE_KERNEL`. */
  probeKernel?: string;
  /** How to start the process shim (see plugins/process). Default: the shoal executable. */
  shimCommand?: string[];
  /** Rotate a task's console log past this size; one previous file is kept. Default 16 MiB. */
  logMaxBytes?: number;
  /** How long `start` waits for QEMU to answer on its QMP socket. Default 10 s. */
  startTimeoutMs?: number;
}

const POLL_MS = 25;
/** x86 Linux's COMMAND_LINE_SIZE, with its terminating NUL. */
const COMMAND_LINE_SIZE = 2048;
/** How often stop presses the power button again during the grace period: a press while the guest
 *  boots (before its power button driver is there) is lost. */
const PRESS_EVERY_MS = 500;

/** Probed once per process and (binary, probe kernel): a VM boot is not something to repeat per task. */
const accelProbes = new Map<string, Promise<AccelChoice>>();

export function createVmExecutor(opts: VmExecutorOptions = {}): Executor {
  const capabilities: ExecutorCapabilities = {
    recover: true, stats: true, logsFollow: true, signals: false, isolation: true, runAsUser: false,
    secrets: true,
  };
  const binary = () => opts.qemuBinary ?? findQemu();
  const chooseOnce = (bin: string): Promise<AccelChoice> => {
    const forced = opts.accel ?? (process.env.SHOAL_VM_ACCEL as VmExecutorOptions['accel']) ?? 'auto';
    if (forced === 'tcg') return Promise.resolve({ accel: 'tcg', kvm: 'not used (accel tcg configured)' });
    if (forced === 'kvm') return Promise.resolve({ accel: 'kvm', kvm: 'configured (accel kvm), not probed' });
    const probeKernel = opts.probeKernel ?? process.env.SHOAL_VM_PROBE_KERNEL;
    const key = `${bin}\0${probeKernel ?? ''}`;
    let choice = accelProbes.get(key);
    if (!choice) accelProbes.set(key, (choice = chooseAccel(bin, probeKernel)));
    return choice;
  };
  const processExec = createProcessExecutor({
    ...(opts.shimCommand ? { shimCommand: opts.shimCommand } : {}),
    ...(opts.logMaxBytes ? { logMaxBytes: opts.logMaxBytes } : {}),
    ...(opts.startTimeoutMs ? { startTimeoutMs: opts.startTimeoutMs } : {}),
  });
  return {
    name: 'vm',
    capabilities,
    async fingerprint(): Promise<Fingerprint> {
      const attributes: Record<string, string> = { 'vm.arch': 'x86_64', 'vm.machine': 'microvm' };
      const bin = binary();
      if (!bin) return { healthy: false, message: 'qemu-system-x86_64 not found on PATH (install Debian\'s qemu-system-x86)', attributes };
      try { attributes['vm.qemu'] = await qemuVersion(bin); } catch (err) {
        return { healthy: false, message: `QEMU does not run: ${(err as Error).message}`, attributes };
      }
      const shim = await processExec.fingerprint();
      if (!shim.healthy) return { healthy: false, message: `the vm runtime runs QEMU through the process shim: ${shim.message}`, attributes };
      const choice = await chooseOnce(bin);
      attributes['vm.accel'] = choice.accel;
      attributes['vm.kvm'] = choice.kvm;
      return {
        healthy: true, attributes, resources: { nanoCPUs: cpus().length * 1e9, memoryBytes: totalmem() },
        ...(choice.accel === 'tcg' ? { message: `VMs run under TCG (emulation, slower): KVM ${choice.kvm}` } : {}),
      };
    },
    validate: validateVmSpec,
    controller(task: Task, ctx: TaskContext): Controller {
      return new VmController(task, ctx, opts, processExec, binary, chooseOnce);
    },
  };
}

class VmController implements Controller {
  readonly #vm: VMSpec;
  readonly #dir: string;
  readonly #qmpSocket: string;
  /** The process controller that runs QEMU under the shim. */
  #qemu: Controller;
  #stopping?: Promise<void>;

  constructor(
    readonly task: Task, readonly ctx: TaskContext, readonly opts: VmExecutorOptions,
    readonly processExec: Executor, readonly binary: () => string | undefined,
    readonly chooseAccel: (bin: string) => Promise<AccelChoice>,
  ) {
    this.#vm = task.Spec.VMSpec ?? {};
    this.#dir = ctx.taskDir;
    this.#qmpSocket = qmpSocketPath(this.#dir);
    // Until prepare knows QEMU's command line, the process controller only needs to find the
    // task's files (after a daemon restart, that is all it needs).
    this.#qemu = this.#processController(['qemu-system-x86_64']);
  }

  #processController(command: string[]): Controller {
    // SIGCONT as the "stop signal": QEMU carries on; the graceful part of stop is the power button
    // (QMP), and the process controller supplies the grace period and the kill after it.
    // Limits.MemoryBytes is the guest's RAM (-m), which QEMU bounds itself; as the QEMU process's
    // cgroup limit too it would leave no room for QEMU's own memory (its code, the TCG translation
    // cache): a guest given 128 MiB then stalls at boot under memory pressure, never printing.
    const { MemoryBytes: _guestRam, ...limits } = this.task.Spec.Resources?.Limits ?? {};
    const resources = this.task.Spec.Resources ? { Resources: { ...this.task.Spec.Resources, Limits: limits } } : {};
    const spec = { ...this.task.Spec, ...resources, Runtime: 'process', ProcessSpec: { Command: command, StopSignal: 'SIGCONT' } };
    return this.processExec.controller({ ...this.task, Spec: spec }, this.ctx);
  }

  #exit(): ExitRecord | undefined { return readJson<ExitRecord>(path(this.#dir, 'exit')); }
  #child(): PidRecord | undefined { return readJson<PidRecord>(path(this.#dir, 'child')); }

  async prepare(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const invalid = validateVmSpec(this.task.Spec);
    if (invalid) throw new PrepareError(invalid);
    for (const field of ['Kernel', 'Initrd', 'Disk'] as const) {
      const file = this.#vm[field];
      if (file !== undefined && !(existsSync(file) && statSync(file).isFile())) {
        throw new PrepareError(`VMSpec.${field}: ${file} is not a file on this node`);
      }
    }
    const bin = this.binary();
    if (!bin) throw new PrepareError('TaskTemplate.Runtime: "vm" needs qemu-system-x86_64 on this node, and it is not on PATH');
    const { accel } = await this.chooseAccel(bin);
    const network = this.ctx.network?.attachments.length ? this.ctx.network : undefined;
    let net: { nics: ReturnType<typeof guestNics>; netCmdline: string } | undefined;
    if (network) {
      try {
        net = { nics: guestNics(this.task.ID, network), netCmdline: networkCmdline(network, this.task.ID.slice(0, 12)) };
      } catch (err) { throw new PrepareError(`task ${this.task.ID}: its networks: ${(err as Error).message}`); }
    }
    let filesDisk: string | undefined;
    if (this.ctx.files) {
      try { filesDisk = writeFilesDisk(this.ctx.files, (p) => readFileSync(p)); } catch (err) {
        throw new PrepareError(`task ${this.task.ID}: its secrets and configs: ${(err as Error).message}`);
      }
    }
    const vm = {
      ...(filesDisk ? { filesDisk } : {}),
      binary: bin, accel, ...vmSize(this.task.Spec), qmpSocket: this.#qmpSocket, tscKhz: hostTscKhz(),
      ...(this.#vm.Kernel ? { kernel: this.#vm.Kernel } : {}),
      ...(this.#vm.Initrd ? { initrd: this.#vm.Initrd } : {}),
      ...(this.#vm.Disk ? { disk: this.#vm.Disk } : {}),
      ...(this.#vm.Cmdline ? { cmdline: this.#vm.Cmdline } : {}),
      ...(net ?? {}),
    };
    if (this.#vm.Kernel && kernelCmdline(vm).length >= COMMAND_LINE_SIZE) {
      throw new PrepareError(`VMSpec.Cmdline: with what the executor adds (${net ? 'the networks\' addresses among it' : 'console, panic…'}), the kernel command line is longer than ${COMMAND_LINE_SIZE - 1} characters`);
    }
    if (network) {
      try {
        const taps = await ensureTaps(this.task.ID, network);
        this.ctx.log(`taps ${taps.join(', ')} on ${network.attachments.map((a) => a.bridge).join(', ')}`);
      } catch (err) { throw new PrepareError(`task ${this.task.ID}: cannot make its tap devices: ${(err as Error).message}`); }
    }
    const argv = qemuArgv(vm);
    this.#qemu = this.#processController(argv);
    await this.#qemu.prepare(signal);
    this.ctx.log(`prepared a microVM (accel ${accel}): ${argv.slice(1).join(' ')}`);
  }

  /** QEMU is up once it answers on QMP: by then the machine is built and the kernel loaded. */
  async start(signal: AbortSignal): Promise<void> {
    await this.#qemu.start(signal);
    const timeoutMs = this.opts.startTimeoutMs ?? 10_000;
    const seen = await pollUntil(async () => {
      const exit = this.#exit();
      if (exit) return exit;
      try { await qmp(this.#qmpSocket, [{ execute: 'query-status' }], 1_000); return 'up' as const; } catch { return undefined; }
    }, { intervalMs: POLL_MS, timeoutMs, signal });
    if (seen === 'up') { this.ctx.log(`QEMU is up (pid ${this.#child()?.pid})`); return; }
    if (seen === undefined) throw new StartError(`task ${this.task.ID}: QEMU did not answer on ${this.#qmpSocket} within ${timeoutMs} ms`);
    const status = vmExitStatus(seen, lastLogLines(this.#dir));
    // A guest that ran and ended before we looked is not a start failure; QEMU refusing is.
    if (seen.exitCode !== 0 && !seen.signal && status.exitCode === 255) {
      const why = qemuComplaint(lastLogLines(this.#dir)) || `exit code ${seen.exitCode}`;
      throw new StartError(`task ${this.task.ID}: QEMU could not start the VM (check VMSpec.Kernel/Initrd/Disk): ${why}`);
    }
  }

  async wait(signal: AbortSignal): Promise<ExitStatus> {
    const qemu = await this.#qemu.wait(signal);
    return vmExitStatus(this.#exit() ?? qemu, lastLogLines(this.#dir));
  }

  stop(graceMs: number): Promise<void> {
    this.#stopping ??= this.#stop(graceMs).then(() => this.#releaseTapsOfEndedQemu()).finally(() => { this.#stopping = undefined; });
    return this.#stopping;
  }

  /** Once QEMU has run and ended, its taps serve nothing: release them (remove does it anyway). */
  async #releaseTapsOfEndedQemu(): Promise<void> {
    const child = this.#child();
    if (child && (this.#exit() || !isAlive(child))) await this.#removeTaps();
  }

  /**
   * Delete the task's taps. Found by name (derived from the task ID), so this works on a controller
   * made after a daemon restart. Without networks in the context, a failure (no iproute2…) is only
   * logged: such a task most likely never had taps.
   */
  async #removeTaps(): Promise<void> {
    try {
      const gone = await removeTaps(this.task.ID);
      if (gone.length) this.ctx.log(`deleted taps ${gone.join(', ')}`);
    } catch (err) {
      if (this.ctx.network?.attachments.length) throw err;
      this.ctx.log(`could not look for tap devices to delete: ${(err as Error).message}`);
    }
  }

  async #stop(graceMs: number): Promise<void> {
    const child = this.#child();
    if (!child || this.#exit() || !isAlive(child)) return this.#qemu.stop(graceMs);
    const done = new AbortController();
    const pressing = this.#pressPowerButton(child, done.signal);
    try { await this.#qemu.stop(graceMs); } finally { done.abort(); await pressing; }
  }

  /** Press the ACPI power button now and every PRESS_EVERY_MS until `until` aborts. */
  async #pressPowerButton(child: PidRecord, until: AbortSignal): Promise<void> {
    let pressed = false;
    while (!until.aborted && !this.#exit()) {
      try {
        await qmp(this.#qmpSocket, [{ execute: 'system_powerdown' }], 1_000);
        if (!pressed) this.ctx.log('pressed the power button (QMP system_powerdown)');
        pressed = true;
      } catch (err) {
        if (!pressed) {
          // No QMP: the best remaining request is SIGTERM, on which QEMU quits (not gracefully).
          this.ctx.log(`power button unavailable (${(err as Error).message}); sending SIGTERM to QEMU`);
          killGroup(child.pid, 'SIGTERM');
          return;
        }
      }
      await pause(PRESS_EVERY_MS, until);
    }
  }

  async remove(): Promise<void> {
    await this.#qemu.remove();
    rmSync(this.#qmpSocket, { force: true });
    await this.#removeTaps();
  }

  /** Its first overlay address; undefined on the host's network (a VM there has no address of its own). */
  async address(): Promise<string | undefined> { return firstAddress(this.ctx.network); }

  recover(): Promise<boolean> { return this.#qemu.recover(); }
  logs(opts?: LogOptions): AsyncIterable<LogLine> { return this.#qemu.logs(opts); }
  stats(): Promise<TaskStats> { return this.#qemu.stats(); }
}
