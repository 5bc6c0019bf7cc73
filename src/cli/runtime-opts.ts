/**
 * `service create` flags particular to one runtime: `--runtime container` (Docker's own flag names:
 * --mount, --health-cmd, --init…) and `--runtime vm` (--kernel, --initrd, --disk, --cmdline).
 * Pure functions over parsed arguments; the executors validate the resulting spec again.
 */
import type { ContainerSpec, HealthConfig, Mount, VMSpec } from '../types/index.ts';
import { type OptionDef, type Parsed, UsageError } from './args.ts';
import { invalid, parseCount, parseDuration, parseKeyValue, parseSize } from './units.ts';

export const CONTAINER_OPTIONS: OptionDef[] = [
  { long: 'entrypoint', kind: 'string', value: 'PROGRAM', help: '--runtime container: replace the image\'s ENTRYPOINT' },
  { long: 'mount', kind: 'list', value: 'MOUNT', help: '--runtime container: type=bind|volume|tmpfs,source=…,target=…[,readonly] (repeatable)' },
  { long: 'hostname', kind: 'string', value: 'NAME', help: '--runtime container: the container\'s host name' },
  { long: 'init', kind: 'bool', help: '--runtime container: run an init as PID 1 (forwards signals, reaps zombies)' },
  { long: 'stop-signal', kind: 'string', value: 'SIGNAL', help: '--runtime container: signal that asks the task to stop (default SIGTERM)' },
  { long: 'container-label', kind: 'list', value: 'KEY=VALUE', help: '--runtime container: container label (repeatable)' },
  { long: 'health-cmd', kind: 'string', value: 'SCRIPT', help: '--runtime container: health check run by /bin/sh -c inside the container' },
  { long: 'health-interval', kind: 'string', value: 'DURATION', help: '--runtime container: time between health checks' },
  { long: 'health-timeout', kind: 'string', value: 'DURATION', help: '--runtime container: how long one check may run' },
  { long: 'health-retries', kind: 'string', value: 'N', help: '--runtime container: failures in a row that make the task unhealthy' },
  { long: 'health-start-period', kind: 'string', value: 'DURATION', help: '--runtime container: failures not counted while the task starts' },
  { long: 'no-healthcheck', kind: 'bool', help: '--runtime container: disable the image\'s HEALTHCHECK' },
];

export const VM_OPTIONS: OptionDef[] = [
  { long: 'kernel', kind: 'string', value: 'PATH', help: '--runtime vm: guest kernel on the node (with --initrd, or --disk)' },
  { long: 'initrd', kind: 'string', value: 'PATH', help: '--runtime vm: initramfs on the node' },
  { long: 'disk', kind: 'string', value: 'PATH', help: '--runtime vm: raw disk image on the node (virtio-blk)' },
  { long: 'cmdline', kind: 'string', value: 'TEXT', help: '--runtime vm: appended to the guest kernel\'s command line' },
];

export const PLUGIN_OPTIONS: OptionDef[] = [
  { long: 'plugin-opt', kind: 'list', value: 'KEY=VALUE', help: 'a plugin\'s runtime: set PluginSpec.<runtime>.KEY (repeatable)' },
];

const BUILTIN = ['process', 'container', 'vm', 'mock'];
const CONTAINER_FLAGS = CONTAINER_OPTIONS.map((o) => o.long);
const VM_FLAGS = VM_OPTIONS.map((o) => o.long);

/** A flag of another runtime is a mistake worth naming, not something to ignore. */
export function refuseRuntimeFlags(p: Parsed, runtime: string): void {
  const foreign = [...(runtime === 'container' ? [] : CONTAINER_FLAGS), ...(runtime === 'vm' ? [] : VM_FLAGS)];
  const f = foreign.find((x) => p.has(x));
  if (f) {
    const owner = CONTAINER_FLAGS.includes(f) ? 'container' : 'vm';
    throw new UsageError(`--${f} only applies to --runtime ${owner} (this service's runtime is ${runtime})`);
  }
  if (BUILTIN.includes(runtime) && p.has('plugin-opt')) {
    throw new UsageError(`--plugin-opt only applies to a plugin's runtime (${runtime} is built in)`);
  }
}

/** `--plugin-opt KEY=VALUE…` → the fields of a plugin's own spec (string values; the plugin checks them). */
export function pluginOpts(p: Parsed): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of p.list('plugin-opt')) {
    const [k, v] = parseKeyValue('plugin-opt', raw, true);
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(k)) throw invalid('plugin-opt', raw, 'KEY is a field name: letters, digits, underscores');
    out[k] = v;
  }
  return out;
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

function healthcheck(p: Parsed): HealthConfig | undefined {
  const timing = ['health-interval', 'health-timeout', 'health-retries', 'health-start-period'].filter((f) => p.has(f));
  if (p.bool('no-healthcheck')) {
    if (p.has('health-cmd') || timing.length) throw new UsageError('--no-healthcheck conflicts with --health-* options');
    return { Test: ['NONE'] };
  }
  if (!p.has('health-cmd') && !timing.length) return undefined;
  const h: HealthConfig = p.has('health-cmd') ? { Test: ['CMD-SHELL', p.str('health-cmd')!] } : {};
  const d = (f: string) => (p.has(f) ? parseDuration(f, p.str(f)!) : undefined);
  const interval = d('health-interval'), timeout = d('health-timeout'), start = d('health-start-period');
  if (interval !== undefined) h.Interval = interval;
  if (timeout !== undefined) h.Timeout = timeout;
  if (start !== undefined) h.StartPeriod = start;
  if (p.has('health-retries')) h.Retries = parseCount('health-retries', p.str('health-retries')!, 1000);
  return h;
}

/** The container flags applied to a ContainerSpec made from IMAGE [COMMAND] [ARG…] (a copy). */
export function applyContainerFlags(p: Parsed, base: ContainerSpec): ContainerSpec {
  const c: ContainerSpec = { ...base };
  const entrypoint = p.str('entrypoint');
  if (entrypoint !== undefined) {
    if (!entrypoint) throw invalid('entrypoint', entrypoint, 'must not be empty');
    c.Command = [entrypoint];
  }
  const mounts = p.list('mount').map((m) => parseMount(m));
  if (mounts.length) c.Mounts = mounts;
  const hostname = p.str('hostname');
  if (hostname !== undefined) c.Hostname = hostname;
  if (p.bool('init')) c.Init = true;
  const stopSignal = p.str('stop-signal');
  if (stopSignal !== undefined) c.StopSignal = stopSignal;
  const labels = p.list('container-label').map((l) => parseKeyValue('container-label', l));
  if (labels.length) c.Labels = Object.fromEntries(labels);
  const h = healthcheck(p);
  if (h) c.Healthcheck = h;
  return c;
}

/** `--runtime vm`: the VMSpec from --kernel/--initrd/--disk/--cmdline. */
export function vmSpecOf(p: Parsed, grace: number | undefined): VMSpec {
  const v: VMSpec = {};
  for (const [flag, field] of [['kernel', 'Kernel'], ['initrd', 'Initrd'], ['disk', 'Disk'], ['cmdline', 'Cmdline']] as const) {
    const raw = p.str(flag);
    if (raw !== undefined) v[field] = raw;
  }
  if (v.Kernel === undefined && v.Disk === undefined) {
    throw new UsageError('"shoal service create --runtime vm" needs --kernel PATH (with --initrd PATH) or --disk PATH');
  }
  if (grace !== undefined) v.StopGracePeriod = grace;
  return v;
}
