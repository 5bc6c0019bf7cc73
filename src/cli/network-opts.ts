/**
 * `--network` (service create) and `--network-add` / `--network-rm` (service update) → the task
 * template's `Networks`. A value is a network name or ID, or Docker's long form
 * `name=NET[,alias=A…]`. The daemon resolves names to IDs.
 */
import type { NetworkAttachmentConfig, TaskSpec } from '../types/index.ts';
import { type OptionDef, type Parsed } from './args.ts';
import { invalid } from './units.ts';

export const NETWORK_OPTION: OptionDef = { long: 'network', kind: 'list', value: 'NETWORK', help: 'attach to an overlay network: NAME or name=NAME,alias=A (repeatable)' };
export const NETWORK_UPDATE_OPTIONS: OptionDef[] = [
  { long: 'network-add', kind: 'list', value: 'NETWORK', help: 'attach to an overlay network' },
  { long: 'network-rm', kind: 'list', value: 'NETWORK', help: 'detach from an overlay network' },
];

/** Networks as `GET /networks` lists them: enough to match a name to the ID a spec holds. */
export interface KnownNetwork { Id: string; Name: string }

export function parseNetwork(raw: string, flag = 'network'): NetworkAttachmentConfig {
  if (!raw.includes('=')) {
    if (!raw.trim()) throw invalid(flag, raw, 'expected a network name or ID');
    return { Target: raw };
  }
  const out: NetworkAttachmentConfig = { Target: '' };
  for (const part of raw.split(',')) {
    const eq = part.indexOf('=');
    const k = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    if (eq < 0 || !v) throw invalid(flag, raw, `"${part}" is not KEY=VALUE`);
    if (k === 'name' || k === 'target') out.Target = v;
    else if (k === 'alias') out.Aliases = [...(out.Aliases ?? []), v];
    else throw invalid(flag, raw, `unknown key "${k}" (expected name or alias)`);
  }
  if (!out.Target) throw invalid(flag, raw, 'name=NETWORK is required');
  return out;
}

/** `service create --network`. */
export function networksOf(p: Parsed): NetworkAttachmentConfig[] | undefined {
  const list = p.list('network').map((n) => parseNetwork(n));
  return list.length ? list : undefined;
}

/** `service update --network-add/--network-rm`, given the networks that exist (names → IDs). */
export function applyNetworkUpdate(tt: TaskSpec, p: Parsed, known: readonly KnownNetwork[]): void {
  if (!p.has('network-add') && !p.has('network-rm')) return;
  const idOf = (ref: string) => known.find((n) => n.Id === ref || n.Name === ref)?.Id ?? known.find((n) => n.Id.startsWith(ref))?.Id ?? ref;
  const rm = new Set(p.list('network-rm').map(idOf));
  const added = p.list('network-add').map((n) => parseNetwork(n, 'network-add'));
  const kept = (tt.Networks ?? []).filter((n) => !rm.has(idOf(n.Target)) && !added.some((a) => idOf(a.Target) === idOf(n.Target)));
  tt.Networks = [...kept, ...added];
}
