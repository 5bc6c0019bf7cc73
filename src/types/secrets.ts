/**
 * Secrets and configs (Docker's swarm-mode shapes): small named blobs that services reference and
 * that tasks receive as files at start. A secret's data never leaves the managers except towards a
 * node that runs a task using it, and is never returned by the API; a config's is.
 */
import type { ConfigReference, FileTarget, Labels, Meta, SecretReference, TaskSpec } from './objects.ts';
import { runtimeOf } from './runtime.ts';

/** Docker's limit for one secret or config (`MaxSecretSize`, `MaxConfigSize`). */
export const MAX_SECRET_BYTES = 500 * 1024;

/** Docker's name rule for secrets and configs. */
export const SECRET_NAME = /^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$/;
export const MAX_SECRET_NAME = 64;

export interface Driver { Name: string; Options?: Record<string, string> }

export interface SecretSpec {
  Name: string;
  Labels?: Labels;
  /** The content, base64 (as the API carries it). */
  Data?: string;
  Driver?: Driver;
  Templating?: Driver;
}

export type ConfigSpec = SecretSpec;

export interface Secret extends Meta { Spec: SecretSpec }
export interface Config extends Meta { Spec: ConfigSpec }


export type FileKind = 'secret' | 'config';

/** The runtime spec of a task that carries its secret and config references. */
type WithRefs = { Secrets?: SecretReference[]; Configs?: ConfigReference[] };

/**
 * Where a task spec keeps its references: the runtime's own spec, a plugin's included
 * (`PluginSpec.<runtime>.Secrets/Configs`, next to the plugin's own fields).
 */
export function refHolder(spec: TaskSpec): WithRefs | undefined {
  const builtin = spec.ContainerSpec ?? spec.ProcessSpec ?? spec.VMSpec ?? spec.MockSpec;
  if (builtin) return builtin as WithRefs;
  const own = spec.PluginSpec?.[runtimeOf(spec)];
  return own && typeof own === 'object' && !Array.isArray(own) ? own as WithRefs : undefined;
}

/** Every secret and config a task spec references, as `{kind, id, name, file}`. */
export function taskFileRefs(spec: TaskSpec): { kind: FileKind; id: string; name: string; file: FileTarget }[] {
  const h = refHolder(spec);
  if (!h) return [];
  const out: { kind: FileKind; id: string; name: string; file: FileTarget }[] = [];
  for (const r of h.Secrets ?? []) out.push({ kind: 'secret', id: r.SecretID, name: r.SecretName, file: r.File ?? { Name: r.SecretName } });
  for (const r of h.Configs ?? []) out.push({ kind: 'config', id: r.ConfigID, name: r.ConfigName, file: r.File ?? { Name: r.ConfigName } });
  return out;
}
