/**
 * `--secret` / `--config` (service create) and `--secret-add|-rm` / `--config-add|-rm` (service
 * update), in the docker CLI's syntax: `NAME` or `source=NAME[,target=FILE][,uid=U][,gid=G][,mode=0400]`.
 * The references land in the runtime's own spec (ContainerSpec, ProcessSpec, VMSpec, MockSpec, or a
 * plugin's `PluginSpec.<runtime>`);
 * the daemon resolves names to IDs and fills in the file defaults.
 */
import type { ConfigReference, FileKind, FileTarget, SecretReference, TaskSpec } from '../types/index.ts';
import { type OptionDef, type Parsed, UsageError } from './args.ts';
import { invalid } from './units.ts';

const FORM = 'NAME or source=NAME,target=FILE,uid=U,gid=G,mode=0400';

export const SECRET_OPTIONS: OptionDef[] = [
  { long: 'secret', kind: 'list', value: 'SECRET', help: `give the tasks a secret: ${FORM} (repeatable)` },
  { long: 'config', kind: 'list', value: 'CONFIG', help: `give the tasks a config: ${FORM} (repeatable)` },
];
export const SECRET_UPDATE_OPTIONS: OptionDef[] = [
  { long: 'secret-add', kind: 'list', value: 'SECRET', help: `add or replace a secret (${FORM})` },
  { long: 'secret-rm', kind: 'list', value: 'NAME', help: 'remove a secret' },
  { long: 'config-add', kind: 'list', value: 'CONFIG', help: `add or replace a config (${FORM})` },
  { long: 'config-rm', kind: 'list', value: 'NAME', help: 'remove a config' },
];

export interface ParsedFileRef { source: string; file?: FileTarget }

export function parseFileRef(raw: string, flag: string): ParsedFileRef {
  if (!raw.includes('=')) {
    if (!raw.trim()) throw invalid(flag, raw, `expected ${FORM}`);
    return { source: raw.trim() };
  }
  let source = '';
  const file: Partial<FileTarget> = {};
  for (const part of raw.split(',')) {
    const eq = part.indexOf('=');
    const k = part.slice(0, eq).trim().toLowerCase();
    const v = part.slice(eq + 1).trim();
    if (eq < 0 || !v) throw invalid(flag, raw, `"${part}" is not KEY=VALUE`);
    if (k === 'source' || k === 'src') source = v;
    else if (k === 'target') file.Name = v;
    else if (k === 'uid' || k === 'gid') {
      if (!/^\d+$/.test(v)) throw invalid(flag, raw, `${k} must be a number`);
      file[k === 'uid' ? 'UID' : 'GID'] = v;
    } else if (k === 'mode') {
      if (!/^[0-7]{1,4}$/.test(v)) throw invalid(flag, raw, 'mode must be octal, e.g. 0400');
      file.Mode = parseInt(v, 8);
    } else throw invalid(flag, raw, `unknown key "${k}" (expected source, target, uid, gid or mode)`);
  }
  if (!source) throw invalid(flag, raw, 'source=NAME is required');
  const hasFile = Object.keys(file).length > 0;
  return { source, ...(hasFile ? { file: { Name: file.Name ?? source, ...file } as FileTarget } : {}) };
}

type Holder = { Secrets?: SecretReference[]; Configs?: ConfigReference[] };

function holderOf(tt: TaskSpec, flag: string): Holder {
  const h = tt.ContainerSpec ?? tt.ProcessSpec ?? tt.VMSpec ?? tt.MockSpec;
  if (h) return h as Holder;
  const runtime = tt.Runtime;
  if (!runtime) throw new UsageError(`--${flag}: give the runtime (--runtime) whose tasks take the secrets or configs`);
  const own = tt.PluginSpec?.[runtime];
  if (own !== undefined && (typeof own !== 'object' || own === null || Array.isArray(own))) {
    throw new UsageError(`--${flag}: PluginSpec.${runtime} is not an object, so it cannot carry Secrets or Configs`);
  }
  if (own) return own as Holder;
  const fresh: Holder = {};
  tt.PluginSpec = { ...tt.PluginSpec, [runtime]: fresh };
  return fresh;
}

function toRef(kind: FileKind, r: ParsedFileRef): SecretReference | ConfigReference {
  return kind === 'secret'
    ? { SecretID: '', SecretName: r.source, ...(r.file ? { File: r.file } : {}) }
    : { ConfigID: '', ConfigName: r.source, ...(r.file ? { File: r.file } : {}) };
}

const nameOf = (r: SecretReference | ConfigReference) => ('SecretName' in r ? r.SecretName : r.ConfigName);

/** `service create --secret/--config` onto the task template. */
export function applyFileRefs(tt: TaskSpec, p: Parsed): void {
  for (const kind of ['secret', 'config'] as const) {
    const refs = p.list(kind).map((x) => toRef(kind, parseFileRef(x, kind)));
    if (!refs.length) continue;
    const h = holderOf(tt, kind);
    if (kind === 'secret') h.Secrets = refs as SecretReference[];
    else h.Configs = refs as ConfigReference[];
  }
}

/** `service update --secret-add/-rm`, `--config-add/-rm` (rm first; an added one replaces one of the same name). */
export function applyFileRefsUpdate(tt: TaskSpec, p: Parsed): void {
  for (const kind of ['secret', 'config'] as const) {
    const add = p.list(`${kind}-add`).map((x) => toRef(kind, parseFileRef(x, `${kind}-add`)));
    const rm = new Set(p.list(`${kind}-rm`));
    if (!add.length && !rm.size) continue;
    const h = holderOf(tt, `${kind}-add`);
    const field = kind === 'secret' ? 'Secrets' : 'Configs';
    const cur = (h[field] ?? []) as (SecretReference | ConfigReference)[];
    const addNames = new Set(add.map(nameOf));
    const next = [...cur.filter((r) => !rm.has(nameOf(r)) && !addNames.has(nameOf(r))), ...add];
    if (next.length) (h as Record<string, unknown>)[field] = next;
    else delete h[field];
  }
}
