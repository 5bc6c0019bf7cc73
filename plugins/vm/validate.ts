/** Checks of a `VMSpec` before a service is accepted, and the VM's size; every message names the field. */
import { validateHostHealthcheck } from '../../src/executor/health.ts';
import type { TaskSpec } from '../../src/types/index.ts';

export const DEFAULT_VCPUS = 1;
export const DEFAULT_MEMORY_MIB = 128;
/** Below this a Linux guest does not get far enough to say why. */
const MIN_MEMORY_MIB = 32;
const MAX_VCPUS = 255;
/** x86 Linux's COMMAND_LINE_SIZE, minus room for what the executor prepends. */
const MAX_CMDLINE = 2048 - 128;
const MIB = 1024 * 1024;

export function validateVmSpec(spec: TaskSpec): string | null {
  const v = spec.VMSpec;
  if (!v || typeof v !== 'object') return 'TaskTemplate.VMSpec: required for runtime "vm"';
  for (const field of ['Kernel', 'Initrd', 'Disk'] as const) {
    const p = v[field];
    if (p === undefined) continue;
    if (typeof p !== 'string' || !p.startsWith('/') || p.includes('\0') || p.includes(',')) {
      return `VMSpec.${field}: ${JSON.stringify(p)} must be an absolute host path without commas`;
    }
  }
  if (v.Kernel === undefined && v.Disk === undefined) return 'VMSpec.Kernel: a Kernel (with an optional Initrd) or a Disk is required';
  if (v.Initrd !== undefined && v.Kernel === undefined) return 'VMSpec.Initrd: needs VMSpec.Kernel';
  if (v.Cmdline !== undefined) {
    if (typeof v.Cmdline !== 'string' || /[\0\n\r]/.test(v.Cmdline)) return 'VMSpec.Cmdline: must be one line of text';
    if (v.Kernel === undefined) return 'VMSpec.Cmdline: needs VMSpec.Kernel (a Disk boots its own command line)';
    if (v.Cmdline.length > MAX_CMDLINE) return `VMSpec.Cmdline: ${v.Cmdline.length} characters, at most ${MAX_CMDLINE}`;
  }
  if (v.StopGracePeriod !== undefined && !(typeof v.StopGracePeriod === 'number' && v.StopGracePeriod >= 0)) {
    return 'VMSpec.StopGracePeriod: must be a non-negative number of nanoseconds';
  }
  const lim = spec.Resources?.Limits;
  if (lim?.NanoCPUs !== undefined) {
    if (!(typeof lim.NanoCPUs === 'number' && lim.NanoCPUs > 0)) return 'Resources.Limits.NanoCPUs: must be positive for a VM';
    if (Math.ceil(lim.NanoCPUs / 1e9) > MAX_VCPUS) return `Resources.Limits.NanoCPUs: at most ${MAX_VCPUS} vCPUs`;
  }
  if (lim?.MemoryBytes !== undefined && !(typeof lim.MemoryBytes === 'number' && lim.MemoryBytes >= MIN_MEMORY_MIB * MIB)) {
    return `Resources.Limits.MemoryBytes: a VM needs at least ${MIN_MEMORY_MIB} MiB`;
  }
  if (v.Healthcheck) return validateHostHealthcheck(v.Healthcheck, 'VMSpec.Healthcheck');
  return null;
}

/** vCPUs (NanoCPUs rounded up) and memory in MiB (rounded up) from `Resources.Limits`. */
export function vmSize(spec: TaskSpec): { vcpus: number; memoryMiB: number } {
  const lim = spec.Resources?.Limits;
  return {
    vcpus: lim?.NanoCPUs ? Math.max(1, Math.ceil(lim.NanoCPUs / 1e9)) : DEFAULT_VCPUS,
    memoryMiB: lim?.MemoryBytes ? Math.ceil(lim.MemoryBytes / MIB) : DEFAULT_MEMORY_MIB,
  };
}
