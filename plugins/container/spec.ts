/**
 * A task's `ContainerSpec` (+ `Resources.Limits`) as the Docker Engine's create-container body, and
 * the checks that run before a service is accepted. Pure: no engine needed, unit-tested alone.
 */
import { constants } from 'node:os';
import type { ContainerCreateOptions, MountSettings } from 'dockerode';
import type { TaskFiles, TaskNetwork } from '../../src/executor/contract.ts';
import type { ContainerSpec, HealthConfig, Mount, Task, TaskSpec } from '../../src/types/index.ts';
import { LABEL_NODE, networkCreateFields } from './network.ts';

export const LABEL_TASK = 'io.shoal.task.id';
export const LABEL_SERVICE = 'io.shoal.service.id';
export { LABEL_NODE };

/** The engine-side name of a task's container. */
export const containerName = (taskId: string) => `shoal-${taskId}`;

/** Docker refuses a memory limit under 6 MiB. */
export const MIN_MEMORY_BYTES = 6 * 1024 * 1024;

/** "SIGTERM", "TERM" or "15" → "SIGTERM"; undefined when unknown. */
export function signalName(s: string): string | undefined {
  const table = constants.signals as Record<string, number>;
  if (/^\d+$/.test(s)) return Object.keys(table).find((k) => table[k] === Number(s));
  const name = s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`;
  return name in table ? name : undefined;
}

/** Signal N → "SIGN…" for Docker's 128+N exit codes; undefined when the code is not one. */
export function signalOfExitCode(code: number): string | undefined {
  if (code <= 128 || code > 128 + 64) return undefined;
  return signalName(String(code - 128));
}

// An image reference: [registry[:port]/]path[:tag][@digest], lowercase path (Docker's grammar, loosely).
const IMAGE_REF = /^(?:[a-zA-Z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

const isStrList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string' && !x.includes('\0'));
const isNs = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0;

export function validateContainerSpec(spec: TaskSpec): string | null {
  const c = spec.ContainerSpec;
  if (!c || typeof c !== 'object') return 'TaskTemplate.ContainerSpec: required for runtime "container"';
  if (typeof c.Image !== 'string' || c.Image === '') return 'ContainerSpec.Image: required (an image reference such as "busybox:latest")';
  if (!IMAGE_REF.test(c.Image)) return `ContainerSpec.Image: ${JSON.stringify(c.Image)} is not a valid image reference`;
  for (const f of ['Command', 'Args'] as const) {
    if (c[f] !== undefined && !isStrList(c[f])) return `ContainerSpec.${f}: must be a list of strings without NUL bytes`;
  }
  if (c.Env !== undefined) {
    if (!Array.isArray(c.Env)) return 'ContainerSpec.Env: must be a list of KEY=VALUE strings';
    const i = c.Env.findIndex((e) => typeof e !== 'string' || !/^[^=\0]+=/.test(e) || e.includes('\0'));
    if (i >= 0) return `ContainerSpec.Env[${i}]: ${JSON.stringify(c.Env[i])} is not KEY=VALUE`;
  }
  if (c.Dir !== undefined && (typeof c.Dir !== 'string' || !c.Dir.startsWith('/'))) {
    return `ContainerSpec.Dir: ${JSON.stringify(c.Dir)} must be an absolute path`;
  }
  if (c.User !== undefined && (typeof c.User !== 'string' || !/^[^:\s]+(:[^:\s]+)?$/.test(c.User))) {
    return `ContainerSpec.User: ${JSON.stringify(c.User)} must be a name, a uid, or user:group`;
  }
  if (c.Hostname !== undefined && (typeof c.Hostname !== 'string' || !/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,252})$/.test(c.Hostname))) {
    return `ContainerSpec.Hostname: ${JSON.stringify(c.Hostname)} is not a valid host name`;
  }
  if (c.Labels !== undefined) {
    if (typeof c.Labels !== 'object' || c.Labels === null) return 'ContainerSpec.Labels: must be an object of strings';
    const bad = Object.entries(c.Labels).find(([, v]) => typeof v !== 'string');
    if (bad) return `ContainerSpec.Labels.${bad[0]}: must be a string`;
  }
  if (c.StopSignal !== undefined && (typeof c.StopSignal !== 'string' || !signalName(c.StopSignal))) {
    return `ContainerSpec.StopSignal: unknown signal ${JSON.stringify(c.StopSignal)}`;
  }
  if (c.StopGracePeriod !== undefined && !isNs(c.StopGracePeriod)) {
    return 'ContainerSpec.StopGracePeriod: must be a non-negative integer number of nanoseconds';
  }
  if (c.Init !== undefined && typeof c.Init !== 'boolean') return 'ContainerSpec.Init: must be true or false';
  if (c.Mounts !== undefined) {
    if (!Array.isArray(c.Mounts)) return 'ContainerSpec.Mounts: must be a list';
    for (let i = 0; i < c.Mounts.length; i++) {
      const err = validateMount(c.Mounts[i]);
      if (err) return `ContainerSpec.Mounts[${i}].${err}`;
    }
  }
  if (c.Healthcheck !== undefined) {
    const err = validateHealthcheck(c.Healthcheck);
    if (err) return `ContainerSpec.Healthcheck.${err}`;
  }
  const limits = spec.Resources?.Limits;
  if (limits?.NanoCPUs !== undefined && !(Number.isInteger(limits.NanoCPUs) && limits.NanoCPUs >= 0)) {
    return 'TaskTemplate.Resources.Limits.NanoCPUs: must be a non-negative integer (1e9 = one CPU)';
  }
  if (limits?.MemoryBytes !== undefined && limits.MemoryBytes !== 0
    && !(Number.isInteger(limits.MemoryBytes) && limits.MemoryBytes >= MIN_MEMORY_BYTES)) {
    return `TaskTemplate.Resources.Limits.MemoryBytes: must be 0 (no limit) or at least ${MIN_MEMORY_BYTES} (6 MiB)`;
  }
  return null;
}

function validateMount(m: Mount | undefined): string | null {
  if (!m || typeof m !== 'object') return 'Type: required (bind, volume or tmpfs)';
  if (!['bind', 'volume', 'tmpfs'].includes(m.Type)) return `Type: ${JSON.stringify(m.Type)} is not bind, volume or tmpfs`;
  if (typeof m.Target !== 'string' || !m.Target.startsWith('/')) return `Target: ${JSON.stringify(m.Target)} must be an absolute path`;
  if (m.Type === 'bind' && (typeof m.Source !== 'string' || !m.Source.startsWith('/'))) {
    return `Source: a bind mount needs an absolute host path, got ${JSON.stringify(m.Source)}`;
  }
  if (m.Type === 'volume' && m.Source !== undefined && (typeof m.Source !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(m.Source))) {
    return `Source: ${JSON.stringify(m.Source)} is not a valid volume name`;
  }
  if (m.Type === 'tmpfs' && m.Source !== undefined && m.Source !== '') return 'Source: a tmpfs mount has no source';
  if (m.ReadOnly !== undefined && typeof m.ReadOnly !== 'boolean') return 'ReadOnly: must be true or false';
  if (m.TmpfsOptions?.SizeBytes !== undefined && !isNs(m.TmpfsOptions.SizeBytes)) return 'TmpfsOptions.SizeBytes: must be a non-negative integer';
  return null;
}

function validateHealthcheck(h: HealthConfig): string | null {
  if (typeof h !== 'object' || h === null) return 'Test: expected an object with Test, Interval, Timeout, Retries, StartPeriod';
  if (h.Test !== undefined) {
    if (!isStrList(h.Test)) return 'Test: must be a list of strings';
    const [kind] = h.Test;
    if (h.Test.length > 0 && !['NONE', 'CMD', 'CMD-SHELL'].includes(kind!)) {
      return `Test: must start with "NONE", "CMD" or "CMD-SHELL", got ${JSON.stringify(kind)}`;
    }
    if ((kind === 'CMD' || kind === 'CMD-SHELL') && h.Test.length < 2) return `Test: "${kind}" needs a command after it`;
  }
  for (const f of ['Interval', 'Timeout', 'StartPeriod'] as const) {
    const v = h[f];
    if (v === undefined) continue;
    if (!isNs(v)) return `${f}: must be a non-negative integer number of nanoseconds`;
    if (v !== 0 && v < 1_000_000) return `${f}: must be 0 (the default) or at least 1 ms (1000000 ns)`;
  }
  if (h.Retries !== undefined && !(Number.isInteger(h.Retries) && h.Retries >= 0)) return 'Retries: must be a non-negative integer';
  return null;
}

/** Env for the container: the worker's injected variables first, the spec's `Env` wins. */
export function containerEnv(c: ContainerSpec, injected: Record<string, string> = {}): string[] {
  const own = new Set((c.Env ?? []).map((kv) => kv.slice(0, kv.indexOf('='))));
  return [...Object.entries(injected).filter(([k]) => !own.has(k)).map(([k, v]) => `${k}=${v}`), ...(c.Env ?? [])];
}

/**
 * The create-container body for a task (name and image pull are the caller's). With `network`, the
 * container starts on the first overlay network's Docker network (see network.ts); the others are
 * the caller's to connect before start.
 */
export function createOptions(task: Task, env: Record<string, string> = {}, network?: TaskNetwork, files?: TaskFiles): ContainerCreateOptions {
  const c = task.Spec.ContainerSpec!;
  const net = network?.attachments.length ? networkCreateFields(network) : undefined;
  const limits = task.Spec.Resources?.Limits;
  const graceMs = c.StopGracePeriod === undefined ? undefined : Math.floor(c.StopGracePeriod / 1e6);
  const mounts = [...(c.Mounts ?? []).map(engineMount), ...(files ? fileMounts(files) : [])];
  const labels = { ...c.Labels, [LABEL_TASK]: task.ID, [LABEL_SERVICE]: task.ServiceID, [LABEL_NODE]: task.NodeID ?? '' };
  return {
    name: containerName(task.ID),
    Image: c.Image,
    // Docker's service model: Command replaces the image's ENTRYPOINT, Args its CMD.
    ...(c.Command?.length ? { Entrypoint: c.Command } : {}),
    ...(c.Args?.length ? { Cmd: c.Args } : {}),
    Env: containerEnv(c, env),
    ...(c.Dir ? { WorkingDir: c.Dir } : {}),
    ...(c.User ? { User: c.User } : {}),
    ...(c.Hostname ? { Hostname: c.Hostname } : {}),
    Labels: labels,
    ...(c.StopSignal ? { StopSignal: signalName(c.StopSignal) } : {}),
    ...(graceMs !== undefined ? { StopTimeout: Math.ceil(graceMs / 1000) } : {}),
    ...(c.Healthcheck ? { Healthcheck: { ...c.Healthcheck } } : {}),
    AttachStdin: false, AttachStdout: false, AttachStderr: false, Tty: false, OpenStdin: false,
    ...(net ? { MacAddress: net.MacAddress!, NetworkingConfig: net.NetworkingConfig! } : {}),
    HostConfig: {
      ...net?.HostConfig,
      // The orchestrator replaces failed tasks: the engine must never restart one behind its back.
      RestartPolicy: { Name: 'no' },
      AutoRemove: false,
      ...(c.Init !== undefined ? { Init: c.Init } : {}),
      ...(limits?.NanoCPUs ? { NanoCpus: limits.NanoCPUs } : {}),
      ...(limits?.MemoryBytes ? { Memory: limits.MemoryBytes } : {}),
      ...(mounts.length ? { Mounts: mounts } : {}),
    },
  };
}

/**
 * Secrets and configs as Docker gives them: each file bind-mounted read-only from the task's tmpfs
 * on the host (so the engine never copies the bytes to its disk), a secret's relative target under
 * /run/secrets, a config's under /.
 */
export function fileMounts(files: TaskFiles): MountSettings[] {
  return files.files.map((f) => {
    const target = f.target.startsWith('/') ? f.target : f.kind === 'secret' ? `/run/secrets/${f.target}` : `/${f.target}`;
    return { Type: 'bind', Source: f.path, Target: target, ReadOnly: true } as MountSettings;
  });
}

function engineMount(m: Mount): MountSettings {
  return {
    Type: m.Type, Target: m.Target, Source: m.Source ?? '',
    ...(m.ReadOnly ? { ReadOnly: true } : {}),
    ...(m.VolumeOptions ? { VolumeOptions: m.VolumeOptions } : {}),
    ...(m.TmpfsOptions ? { TmpfsOptions: m.TmpfsOptions } : {}),
  } as MountSettings; // the type package makes optional engine fields required
}
