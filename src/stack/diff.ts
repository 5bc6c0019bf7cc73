/**
 * What a (re)deploy has to do: given the plan and what the stack already has (listed by its
 * namespace label), the objects to create, the services to create or update, and with `--prune`
 * the services to remove. A service is updated only when its converted spec differs from the one
 * the last deploy sent (a hash in a label), so a redeploy with one change touches one service.
 */
import { createHash } from 'node:crypto';
import type { ServiceSpec } from '../types/index.ts';
import { DIGEST_LABEL, type FilePlan, type NetworkPlan, type StackPlan } from './convert.ts';
import { ComposeError } from './load.ts';

/** The hash of the spec the last deploy sent, on each stack service. */
export const SPEC_LABEL = 'io.shoal.stack.spec';

export interface Current {
  services: { ID: string; Version: { Index: number }; Spec: ServiceSpec }[];
  networks: { Id: string; Name: string }[];
  secrets: { ID: string; Spec: { Name: string; Labels?: Record<string, string> } }[];
  configs: { ID: string; Spec: { Name: string; Labels?: Record<string, string> } }[];
}

export type Action =
  | { op: 'create-network'; network: NetworkPlan }
  | { op: 'create-secret' | 'create-config'; object: FilePlan }
  | { op: 'create-service'; spec: ServiceSpec }
  | { op: 'update-service'; id: string; version: number; spec: ServiceSpec }
  | { op: 'remove-service'; id: string; name: string };

/** JSON with sorted keys, so that key order never reads as a change. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x));
}

export function specDigest(spec: ServiceSpec): string {
  const { [SPEC_LABEL]: _old, ...labels } = spec.Labels ?? {};
  return createHash('sha256').update(canonical({ ...spec, Labels: labels })).digest('hex').slice(0, 32);
}

/** The spec as sent: with the hash label the next deploy compares against. */
export function withDigest(spec: ServiceSpec): ServiceSpec {
  return { ...spec, Labels: { ...spec.Labels, [SPEC_LABEL]: specDigest(spec) } };
}

export function diffStack(plan: StackPlan, cur: Current, prune: boolean): Action[] {
  const out: Action[] = [];
  for (const kind of ['secrets', 'configs'] as const) {
    for (const o of plan[kind]) {
      const have = cur[kind].find((x) => x.Spec.Name === o.Name);
      if (!have) out.push({ op: kind === 'secrets' ? 'create-secret' : 'create-config', object: o });
      else if (have.Spec.Labels?.[DIGEST_LABEL] !== o.Labels[DIGEST_LABEL]) {
        throw new ComposeError(`${kind.slice(0, -1)} ${o.Name} exists with other content: ${kind} cannot change; give it a new name (e.g. name: ${o.Name}_v2) or remove the stack first`);
      }
    }
  }
  for (const n of plan.networks) if (!cur.networks.some((x) => x.Name === n.Name)) out.push({ op: 'create-network', network: n });
  for (const spec of plan.services) {
    const have = cur.services.find((s) => s.Spec.Name === spec.Name);
    if (!have) out.push({ op: 'create-service', spec: withDigest(spec) });
    else if (have.Spec.Labels?.[SPEC_LABEL] !== specDigest(spec)) out.push({ op: 'update-service', id: have.ID, version: have.Version.Index, spec: withDigest(spec) });
  }
  if (prune) {
    for (const s of cur.services) if (!plan.services.some((p) => p.Name === s.Spec.Name)) out.push({ op: 'remove-service', id: s.ID, name: s.Spec.Name });
  }
  return out;
}
