/**
 * Invariants of the secrets and configs tables, checked when a batch is applied (so that they hold
 * on every replica whatever raced): names are unique, an object a service's spec references is not
 * deleted, and a service does not start referencing one that does not exist.
 */
import { type FileKind, type Secret, type Service, taskFileRefs } from '../types/index.ts';
import type { Action, ApplyResult } from './actions.ts';

const TABLE: Record<FileKind, 'secrets' | 'configs'> = { secret: 'secrets', config: 'configs' };

export interface SecretRulesView {
  get(table: 'secrets' | 'configs' | 'services', id: string): unknown;
  by(table: 'secrets' | 'configs', key: 'name', value: string): { ID: string }[];
  list(table: 'services'): Service[];
}

export function touchesSecrets(a: Action): boolean {
  if (a.table === 'secrets' || a.table === 'configs') return true;
  return a.table === 'services' && (a.op === 'create' || a.op === 'update') && taskFileRefs((a.object as Service).Spec.TaskTemplate).length > 0;
}

export function checkSecretActions(actions: readonly Action[], view: SecretRulesView): ApplyResult | null {
  const deleted = new Set<string>();
  const created = new Map<string, string>(); // `${table}/${name}` → id
  for (const a of actions) {
    if (a.table !== 'secrets' && a.table !== 'configs') continue;
    if (a.op === 'delete') { deleted.add(`${a.table}/${a.id}`); continue; }
    if (a.op !== 'create') continue;
    const name = (a.object as Secret).Spec.Name;
    const key = `${a.table}/${name}`;
    const holder = view.by(a.table, 'name', name).find((o) => !deleted.has(`${a.table}/${o.ID}`));
    if (holder || created.has(key)) return { ok: false, status: 409, message: `${a.table.slice(0, -1)} name "${name}" is already in use` };
    created.set(key, a.object.ID);
  }
  const exists = (kind: FileKind, id: string) => {
    const key = `${TABLE[kind]}/${id}`;
    if (deleted.has(key)) return false;
    return !!view.get(TABLE[kind], id) || actions.some((a) => a.op === 'create' && a.table === TABLE[kind] && a.object.ID === id);
  };
  // Services as they will be after the batch.
  const services = new Map(view.list('services').map((s) => [s.ID, s]));
  for (const a of actions) {
    if (a.table !== 'services') continue;
    if (a.op === 'delete') services.delete(a.id);
    else if (a.op !== 'patch') {
      const s = a.object as Service;
      services.set(s.ID, s);
      for (const r of taskFileRefs(s.Spec.TaskTemplate)) {
        if (!exists(r.kind, r.id)) return { ok: false, status: 409, message: `service ${s.Spec.Name}: ${r.kind} ${r.name} (${r.id}) does not exist` };
      }
    }
  }
  for (const key of deleted) {
    const [table, id] = key.split('/') as ['secrets' | 'configs', string];
    const kind: FileKind = table === 'secrets' ? 'secret' : 'config';
    const users = [...services.values()].filter((s) => taskFileRefs(s.Spec.TaskTemplate).some((r) => r.kind === kind && r.id === id));
    if (users.length) {
      const name = (view.get(table, id) as Secret | undefined)?.Spec.Name ?? id;
      return { ok: false, status: 409, message: inUseMessage(kind, name, users.map((s) => s.Spec.Name)) };
    }
  }
  return null;
}

export function inUseMessage(kind: FileKind, name: string, services: string[]): string {
  const names = [...services].sort();
  return `${kind} ${name} is in use by the following service${names.length > 1 ? 's' : ''}: ${names.join(', ')}`;
}
