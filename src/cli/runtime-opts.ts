/**
 * `service create` / `service update` flags particular to one runtime: `--runtime container` (Docker's
 * own flag names: --mount, --health-cmd, --init…; on update --mount-add/-rm, --container-label-add/-rm),
 * `--runtime vm` (--kernel, --initrd, --disk, --cmdline) and a plugin's runtime (--plugin-opt, on
 * update --plugin-opt-add/-rm). Create and update share the parsers, so a bad value reads the same.
 * Pure functions over parsed arguments; the executors validate the resulting spec again.
 */
import type { ContainerSpec, HealthConfig, Mount, ProcessIsolation, VMSpec } from '../types/index.ts';
import { type OptionDef, type Parsed, UsageError } from './args.ts';
import { invalid, parseCount, parseDuration, parseKeyValue, parseSize } from './units.ts';

export const CONTAINER_OPTIONS: OptionDef[] = [
  { long: 'entrypoint', kind: 'string', value: 'PROGRAM', help: '--runtime container: replace the image\'s ENTRYPOINT' },
  { long: 'mount', kind: 'list', value: 'MOUNT', help: '--runtime container: type=bind|volume|tmpfs,source=…,target=…[,readonly] (repeatable)' },
  { long: 'hostname', kind: 'string', value: 'NAME', help: '--runtime container: the container\'s host name' },
  { long: 'init', kind: 'bool', help: '--runtime container: run an init as PID 1 (forwards signals, reaps zombies)' },
  { long: 'stop-signal', kind: 'string', value: 'SIGNAL', help: '--runtime container: signal that asks the task to stop (default SIGTERM)' },
  { long: 'container-label', kind: 'list', value: 'KEY=VALUE', help: '--runtime container: container label (repeatable)' },
  { long: 'health-cmd', kind: 'string', value: 'SCRIPT', help: 'container, process, vm: health check run by /bin/sh -c (in the container; on the node for a process or VM)' },
  { long: 'health-interval', kind: 'string', value: 'DURATION', help: 'container, process, vm: time between health checks' },
  { long: 'health-timeout', kind: 'string', value: 'DURATION', help: 'container, process, vm: how long one check may run' },
  { long: 'health-retries', kind: 'string', value: 'N', help: 'container, process, vm: failures in a row that make the task unhealthy' },
  { long: 'health-start-period', kind: 'string', value: 'DURATION', help: 'container, process, vm: failures not counted while the task starts' },
  { long: 'no-healthcheck', kind: 'bool', help: 'container, process, vm: disable the health check (a container: the image\'s HEALTHCHECK)' },
];

export const VM_OPTIONS: OptionDef[] = [
  { long: 'kernel', kind: 'string', value: 'PATH', help: '--runtime vm: guest kernel on the node (with --initrd, or --disk)' },
  { long: 'initrd', kind: 'string', value: 'PATH', help: '--runtime vm: initramfs on the node' },
  { long: 'disk', kind: 'string', value: 'PATH', help: '--runtime vm: raw disk image on the node (virtio-blk)' },
  { long: 'cmdline', kind: 'string', value: 'TEXT', help: '--runtime vm: appended to the guest kernel\'s command line' },
];

/** Create and update alike (on update "" removes the namespaces). */
export const PROCESS_OPTIONS: OptionDef[] = [
  { long: 'isolation', kind: 'string', value: 'LIST', help: '--runtime process: namespaces of its own, any of pid,mount,network (root; with mount, its secrets and configs at /run/secrets, /run/configs)' },
];

const ISOLATION_KEYS = { pid: 'Pid', mount: 'Mount', network: 'Network' } as const;

/** `--isolation pid,mount` → ProcessSpec.Isolation; "" → undefined (none). */
export function parseIsolation(raw: string): ProcessIsolation | undefined {
  const out: ProcessIsolation = {};
  for (const part of raw.split(',').map((x) => x.trim().toLowerCase()).filter(Boolean)) {
    const k = ISOLATION_KEYS[part as keyof typeof ISOLATION_KEYS];
    if (!k) throw invalid('isolation', raw, `"${part}" is not a namespace: give any of pid, mount, network, e.g. pid,mount`);
    out[k] = true;
  }
  return Object.keys(out).length ? out : undefined;
}

export const PLUGIN_OPTIONS: OptionDef[] = [
  { long: 'plugin-opt', kind: 'list', value: 'KEY=VALUE', help: 'a plugin\'s runtime: set PluginSpec.<runtime>.KEY (repeatable)' },
];

/** `service update` only: Docker's -add/-rm pairs for the container's lists and maps. */
const CONTAINER_UPDATE_ONLY: OptionDef[] = [
  { long: 'mount-add', kind: 'list', value: 'MOUNT', help: '--runtime container: add a mount (--mount syntax; replaces the one at the same target)' },
  { long: 'mount-rm', kind: 'list', value: 'TARGET', help: '--runtime container: remove the mount at this target path' },
  { long: 'container-label-add', kind: 'list', value: 'KEY=VALUE', help: '--runtime container: add or change a container label' },
  { long: 'container-label-rm', kind: 'list', value: 'KEY', help: '--runtime container: remove a container label' },
];

/** What an update does with a value that create would refuse or never see. */
const UPDATE_HELP: Record<string, string> = {
  entrypoint: '--runtime container: replace the image\'s ENTRYPOINT ("" restores the image\'s)',
  hostname: '--runtime container: the container\'s host name ("" removes it)',
  init: '--runtime container: run an init as PID 1 (--init=false: no init)',
  'stop-signal': '--runtime container: signal that asks the task to stop ("" restores SIGTERM)',
  'health-cmd': 'container, process, vm: health check run by /bin/sh -c ("" removes it: a container gets the image\'s again)',
  'no-healthcheck': 'container, process, vm: disable the health check (--no-healthcheck=false: a container\'s image\'s again)',
  initrd: '--runtime vm: initramfs on the node ("" removes it)',
  cmdline: '--runtime vm: appended to the guest kernel\'s command line ("" removes it)',
  kernel: '--runtime vm: guest kernel on the node ("" removes it; a kernel or a disk must remain)',
  disk: '--runtime vm: raw disk image on the node ("" removes it; a kernel or a disk must remain)',
};
const forUpdate = (o: OptionDef): OptionDef => (UPDATE_HELP[o.long] ? { ...o, help: UPDATE_HELP[o.long]! } : o);

export const CONTAINER_UPDATE_OPTIONS: OptionDef[] = [
  ...CONTAINER_OPTIONS.filter((o) => o.long !== 'mount' && o.long !== 'container-label').map(forUpdate),
  ...CONTAINER_UPDATE_ONLY,
];
export const VM_UPDATE_OPTIONS: OptionDef[] = VM_OPTIONS.map(forUpdate);
export const PLUGIN_UPDATE_OPTIONS: OptionDef[] = [
  { long: 'plugin-opt-add', kind: 'list', value: 'KEY=VALUE', help: 'a plugin\'s runtime: set PluginSpec.<runtime>.KEY (repeatable)' },
  { long: 'plugin-opt-rm', kind: 'list', value: 'KEY', help: 'a plugin\'s runtime: remove PluginSpec.<runtime>.KEY (repeatable)' },
];

const BUILTIN = ['process', 'container', 'vm', 'mock'];
const HEALTH_FLAGS = ['health-cmd', 'health-interval', 'health-timeout', 'health-retries', 'health-start-period', 'no-healthcheck'];
/** Runtimes with a health check: the engine's for a container, the worker's for a process or a VM. */
const HEALTH_RUNTIMES = ['container', 'process', 'vm'];
const CONTAINER_FLAGS = [...CONTAINER_OPTIONS, ...CONTAINER_UPDATE_ONLY].map((o) => o.long).filter((f) => !HEALTH_FLAGS.includes(f));
const VM_FLAGS = VM_OPTIONS.map((o) => o.long);
const PLUGIN_FLAGS = [...PLUGIN_OPTIONS, ...PLUGIN_UPDATE_OPTIONS].map((o) => o.long);

/** A flag of another runtime is a mistake worth naming, not something to ignore (create and update). */
export function refuseRuntimeFlags(p: Parsed, runtime: string): void {
  const hf = HEALTH_FLAGS.find((x) => p.has(x));
  if (hf && !HEALTH_RUNTIMES.includes(runtime)) throw new UsageError(`--${hf} only applies to --runtime container, process or vm (this service's runtime is ${runtime})`);
  const foreign = [...(runtime === 'container' ? [] : CONTAINER_FLAGS), ...(runtime === 'vm' ? [] : VM_FLAGS)];
  const f = foreign.find((x) => p.has(x));
  if (f) {
    const owner = CONTAINER_FLAGS.includes(f) ? 'container' : 'vm';
    throw new UsageError(`--${f} only applies to --runtime ${owner} (this service's runtime is ${runtime})`);
  }
  if (runtime !== 'process' && p.has('isolation')) throw new UsageError(`--isolation only applies to --runtime process (this service's runtime is ${runtime})`);
  const pf = PLUGIN_FLAGS.find((x) => p.has(x));
  if (BUILTIN.includes(runtime) && pf) {
    throw new UsageError(`--${pf} only applies to a plugin's runtime (${runtime} is built in)`);
  }
}

/** One `KEY=VALUE` (or, for a removal, `KEY`) of a plugin's spec; KEY is a field name. */
function pluginKey(flag: string, raw: string, k: string): string {
  if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(k)) throw invalid(flag, raw, 'KEY is a field name: letters, digits, underscores');
  return k;
}

function pluginOpt(flag: string, raw: string): [string, string] {
  const [k, v] = parseKeyValue(flag, raw, true);
  return [pluginKey(flag, raw, k), v];
}

/** `--plugin-opt KEY=VALUE…` → the fields of a plugin's own spec (string values; the plugin checks them). */
export function pluginOpts(p: Parsed): Record<string, string> {
  return Object.fromEntries(p.list('plugin-opt').map((raw) => pluginOpt('plugin-opt', raw)));
}

/** `service update --plugin-opt-rm KEY… --plugin-opt-add KEY=VALUE…` on a plugin's own spec (a copy). */
export function applyPluginOptUpdate(p: Parsed, base: Record<string, unknown>): Record<string, unknown> {
  const own = { ...base };
  for (const raw of p.list('plugin-opt-rm')) delete own[pluginKey('plugin-opt-rm', raw, raw)];
  for (const raw of p.list('plugin-opt-add')) {
    const [k, v] = pluginOpt('plugin-opt-add', raw);
    own[k] = v;
  }
  return own;
}

/** Docker's `--mount` syntax: comma-separated key=value, `readonly` alone allowed. */
export function parseMount(raw: string, flag = 'mount'): Mount {
  const m: Partial<Mount> & { Type?: Mount['Type'] } = {};
  for (const part of raw.split(',')) {
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? undefined : part.slice(eq + 1);
    const need = () => {
      if (value === undefined || value === '') throw invalid(flag, raw, `"${key}" needs a value`);
      return value;
    };
    switch (key) {
      case 'type': {
        const t = need();
        if (t !== 'bind' && t !== 'volume' && t !== 'tmpfs') throw invalid(flag, raw, `type must be bind, volume or tmpfs, not "${t}"`);
        m.Type = t;
        break;
      }
      case 'source': case 'src': m.Source = need(); break;
      case 'target': case 'destination': case 'dst': m.Target = need(); break;
      case 'readonly': case 'ro':
        if (value !== undefined && !['true', 'false', '1', '0'].includes(value)) throw invalid(flag, raw, 'readonly is true or false');
        m.ReadOnly = value === undefined || value === 'true' || value === '1';
        break;
      case 'volume-nocopy': m.VolumeOptions = { ...m.VolumeOptions, NoCopy: value === undefined || value === 'true' }; break;
      case 'tmpfs-size': m.TmpfsOptions = { ...m.TmpfsOptions, SizeBytes: parseSize(flag, need()) }; break;
      case 'tmpfs-mode': {
        const mode = need();
        if (!/^[0-7]{3,4}$/.test(mode)) throw invalid(flag, raw, 'tmpfs-mode is octal, e.g. 1777');
        m.TmpfsOptions = { ...m.TmpfsOptions, Mode: parseInt(mode, 8) };
        break;
      }
      default: throw invalid(flag, raw, `unknown key "${key}" (type, source, target, readonly, volume-nocopy, tmpfs-size, tmpfs-mode)`);
    }
  }
  m.Type ??= 'volume';
  if (!m.Target) throw invalid(flag, raw, 'target is required');
  return m as Mount;
}

const HEALTH_TIMING = ['health-interval', 'health-timeout', 'health-retries', 'health-start-period'];

/**
 * The health flags on the current HealthConfig (none at create), as `docker service update`:
 * `--no-healthcheck` alone disables the check; any other health flag drops such a `NONE`;
 * `--health-cmd ""` inherits the image's test again. Undefined when nothing is left.
 */
export function applyHealthcheck(p: Parsed, current: HealthConfig | undefined): HealthConfig | undefined {
  const timing = HEALTH_TIMING.filter((f) => p.has(f));
  if (!p.has('no-healthcheck') && !p.has('health-cmd') && !timing.length) return current;
  if (p.bool('no-healthcheck')) {
    if (p.has('health-cmd') || timing.length) throw new UsageError('--no-healthcheck conflicts with --health-* options');
    return { Test: ['NONE'] };
  }
  const h: HealthConfig = { ...current };
  if (h.Test?.[0] === 'NONE') delete h.Test;
  const cmd = p.str('health-cmd');
  if (cmd !== undefined) {
    if (cmd) h.Test = ['CMD-SHELL', cmd];
    else delete h.Test;
  }
  for (const [flag, field] of [['health-interval', 'Interval'], ['health-timeout', 'Timeout'], ['health-start-period', 'StartPeriod']] as const) {
    const raw = p.str(flag);
    if (raw !== undefined) h[field] = parseDuration(flag, raw);
  }
  if (p.has('health-retries')) h.Retries = parseCount('health-retries', p.str('health-retries')!, 1000);
  return Object.keys(h).length ? h : undefined;
}

/** A field set from a string flag; on update `""` removes it (back to the image's or the default). */
function setOrReset<T extends object>(o: T, field: keyof T, raw: string | undefined): void {
  if (raw === undefined) return;
  if (raw === '') delete o[field];
  else (o as Record<keyof T, unknown>)[field] = raw;
}

/**
 * The container flags on a ContainerSpec (a copy): at create, on the one made from IMAGE [CMD…]
 * (--mount, --container-label set the lists); at update, on the current one (--mount-add/-rm,
 * --container-label-add/-rm edit them, and "" resets --entrypoint, --hostname, --stop-signal).
 */
export function applyContainerFlags(p: Parsed, base: ContainerSpec, update = false): ContainerSpec {
  const c: ContainerSpec = { ...base };
  const entrypoint = p.str('entrypoint');
  if (entrypoint !== undefined) {
    if (!entrypoint && !update) throw invalid('entrypoint', entrypoint, 'must not be empty');
    if (entrypoint) c.Command = [entrypoint];
    else delete c.Command;
  }
  let mounts = p.has('mount') ? p.list('mount').map((m) => parseMount(m)) : c.Mounts;
  if (p.has('mount-add') || p.has('mount-rm')) {
    const added = p.list('mount-add').map((m) => parseMount(m, 'mount-add'));
    added.forEach((m, i) => {
      if (added.findIndex((o) => o.Target === m.Target) !== i) throw invalid('mount-add', p.list('mount-add')[i]!, `target ${m.Target} is given twice`);
    });
    const gone = new Set([...p.list('mount-rm'), ...added.map((m) => m.Target)]);
    mounts = [...(mounts ?? []).filter((m) => !gone.has(m.Target)), ...added];
  }
  if (mounts?.length) c.Mounts = mounts;
  else delete c.Mounts;
  setOrReset(c, 'Hostname', p.str('hostname'));
  if (p.has('init')) {
    if (p.bool('init')) c.Init = true;
    else delete c.Init;
  }
  setOrReset(c, 'StopSignal', p.str('stop-signal'));
  let labels = p.has('container-label') ? Object.fromEntries(p.list('container-label').map((l) => parseKeyValue('container-label', l))) : c.Labels;
  if (p.has('container-label-add') || p.has('container-label-rm')) {
    labels = { ...labels };
    for (const k of p.list('container-label-rm')) delete labels[k];
    Object.assign(labels, Object.fromEntries(p.list('container-label-add').map((l) => parseKeyValue('container-label-add', l))));
  }
  if (labels && Object.keys(labels).length) c.Labels = labels;
  else delete c.Labels;
  const h = applyHealthcheck(p, c.Healthcheck);
  if (h) c.Healthcheck = h;
  else delete c.Healthcheck;
  return c;
}

/**
 * --kernel/--initrd/--disk/--cmdline on a VMSpec (a copy; at create an empty one). On update `""`
 * removes a field; the result must still boot: a kernel (an initramfs only with it) or a disk.
 */
export function applyVMFlags(p: Parsed, base: VMSpec, grace: number | undefined, update = false): VMSpec {
  const v: VMSpec = { ...base };
  for (const [flag, field] of [['kernel', 'Kernel'], ['initrd', 'Initrd'], ['disk', 'Disk'], ['cmdline', 'Cmdline']] as const) {
    setOrReset(v, field, p.str(flag));
  }
  if (v.Kernel === undefined && v.Disk === undefined) {
    throw new UsageError(update
      ? 'a VM service needs a kernel or a disk: this update would leave neither (give --kernel PATH or --disk PATH)'
      : '"shoal service create --runtime vm" needs --kernel PATH (with --initrd PATH) or --disk PATH');
  }
  if (v.Initrd !== undefined && v.Kernel === undefined) throw new UsageError('--initrd needs --kernel: an initramfs is loaded with a kernel (a --disk boots on its own)');
  if (grace !== undefined) v.StopGracePeriod = grace;
  const h = applyHealthcheck(p, v.Healthcheck);
  if (h) v.Healthcheck = h;
  else delete v.Healthcheck;
  return v;
}

/** `--runtime vm` at create: the VMSpec from --kernel/--initrd/--disk/--cmdline. */
export function vmSpecOf(p: Parsed, grace: number | undefined): VMSpec {
  return applyVMFlags(p, {}, grace);
}
