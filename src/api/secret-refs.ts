/**
 * A service's secret and config references, resolved against the store: each names an existing
 * object (by ID or name; a missing one is a 400 naming it), and gets Docker's defaults for its file
 * (the object's name, uid 0, gid 0, mode 0444). Targets are checked per runtime: containers may give
 * absolute paths; processes, VMs and plugins' runtimes get a directory of their own, so only plain
 * relative names.
 */
import { InvalidArgumentError } from '../lib/errors.ts';
import type { MemoryStore } from '../store/index.ts';
import { type FileKind, type FileTarget, refHolder, runtimeOf, type ServiceSpec } from '../types/index.ts';
import { TABLE_OF } from './secret-spec.ts';

const HOLDERS = ['ContainerSpec', 'ProcessSpec', 'VMSpec', 'MockSpec'] as const;

function resolveOne(store: MemoryStore, kind: FileKind, id: string | undefined, name: string | undefined, field: string) {
  const table = TABLE_OF[kind];
  const o = (id ? store.get(table, id) : undefined) ?? (name ? store.by(table, 'name', name)[0] : undefined);
  if (!o) {
    const ref = name || id;
    if (!ref) throw new InvalidArgumentError(`${field}: give the ${kind}'s name or ID`);
    throw new InvalidArgumentError(`${field}: ${kind} "${ref}" not found: create it first (shoal ${kind} create ${name || 'NAME'} FILE)`);
  }
  return o;
}

function checkFile(kind: FileKind, file: FileTarget, runtime: string, field: string): FileTarget {
  const name = file.Name;
  const parts = name.split('/');
  if (parts.includes('..')) throw new InvalidArgumentError(`${field}.File.Name: "${name}" must not contain ".."`);
  if (name.startsWith('/')) {
    if (runtime !== 'container') throw new InvalidArgumentError(`${field}.File.Name: "${name}": a ${runtime} task gets its ${kind}s in a directory of its own; give a relative file name`);
  } else if (runtime !== 'container' && (parts.length > 1 || name === '.' || name === '')) {
    throw new InvalidArgumentError(`${field}.File.Name: "${name}": give a plain file name (no "/") for a ${runtime} task`);
  }
  for (const k of ['UID', 'GID'] as const) {
    const v = file[k];
    if (v !== undefined && !/^\d{1,10}$/.test(v)) throw new InvalidArgumentError(`${field}.File.${k}: "${v}" is not a numeric id`);
  }
  return { Name: name, UID: file.UID ?? '0', GID: file.GID ?? '0', Mode: file.Mode ?? 0o444 };
}

/** Resolve the references in place (IDs and names filled in, file defaults set). */
export function resolveFileRefs(store: MemoryStore, spec: ServiceSpec): void {
  const tt = spec.TaskTemplate;
  const runtime = runtimeOf(tt);
  const h = refHolder(tt);
  if (h) {
    const holder = HOLDERS.find((k) => tt[k] === h) ?? `PluginSpec.${runtime}`;
    const targets = new Map<string, string>();
    const seen = (kind: FileKind, target: string, field: string) => {
      const key = runtime === 'container' && kind === 'secret' && !target.startsWith('/') ? `/run/secrets/${target}` : `${kind}:${target}`;
      const prev = targets.get(key);
      if (prev) throw new InvalidArgumentError(`${field}.File.Name: target "${target}" is also used by ${prev}`);
      targets.set(key, field);
    };
    h.Secrets?.forEach((r, i) => {
      const field = `TaskTemplate.${holder}.Secrets[${i}]`;
      const o = resolveOne(store, 'secret', r.SecretID, r.SecretName, field);
      r.SecretID = o.ID;
      r.SecretName = o.Spec.Name;
      r.File = checkFile('secret', r.File ?? { Name: o.Spec.Name }, runtime, field);
      seen('secret', r.File.Name, field);
    });
    h.Configs?.forEach((r, i) => {
      const field = `TaskTemplate.${holder}.Configs[${i}]`;
      if ((r as { Runtime?: unknown }).Runtime !== undefined) throw new InvalidArgumentError(`${field}.Runtime: runtime configs (credential specs) are not supported; give File`);
      const o = resolveOne(store, 'config', r.ConfigID, r.ConfigName, field);
      r.ConfigID = o.ID;
      r.ConfigName = o.Spec.Name;
      r.File = checkFile('config', r.File ?? { Name: runtime === 'container' ? `/${o.Spec.Name}` : o.Spec.Name }, runtime, field);
      seen('config', r.File.Name, field);
    });
  }
}
