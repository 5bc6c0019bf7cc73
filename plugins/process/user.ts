/** `ProcessSpec.User` → uid/gid, from /etc/passwd and /etc/group (no NSS: a static binary can't). */
import { readFileSync } from 'node:fs';

export interface ResolvedUser {
  uid: number;
  gid: number;
  home?: string;
  name?: string;
  /** Supplementary groups: the user's memberships in /etc/group, then `ProcessSpec.Groups`. */
  groups?: number[];
}

interface Entry { name: string; id: number; gid: number; home: string; members: string[] }

function readTable(file: string): Entry[] {
  let text = '';
  try { text = readFileSync(file, 'utf8'); } catch { return []; }
  const out: Entry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    // passwd: name:x:uid:gid:gecos:home:shell   group: name:x:gid:members
    out.push({ name: f[0]!, id: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '', members: (f[3] ?? '').split(',').filter(Boolean) });
  }
  return out;
}

const isId = (s: string) => /^\d+$/.test(s);

/** Throws an Error naming `ProcessSpec.User` when the user or group is unknown. */
export function resolveUser(spec: string, files = { passwd: '/etc/passwd', group: '/etc/group' }): ResolvedUser {
  const [userPart, groupPart] = spec.split(':', 2);
  if (!userPart) throw new Error(`ProcessSpec.User: "${spec}" is empty; use a name, a uid or uid:gid`);
  const passwd = readTable(files.passwd);
  const entry = isId(userPart) ? passwd.find((e) => e.id === Number(userPart)) : passwd.find((e) => e.name === userPart);
  if (!entry && !isId(userPart)) throw new Error(`ProcessSpec.User: no user "${userPart}" in ${files.passwd}`);
  const uid = entry ? entry.id : Number(userPart);
  // As Docker: a uid without a passwd entry runs with gid 0 unless a group is given.
  let gid = entry ? entry.gid : 0;
  if (groupPart !== undefined) {
    if (isId(groupPart)) gid = Number(groupPart);
    else {
      const g = readTable(files.group).find((e) => e.name === groupPart);
      if (!g) throw new Error(`ProcessSpec.User: no group "${groupPart}" in ${files.group}`);
      gid = g.id;
    }
  }
  return { uid, gid, ...(entry ? { home: entry.home, name: entry.name } : {}) };
}

/**
 * The supplementary groups of `user`: every group in /etc/group that lists its name, then `extra`
 * (names or gids, as `ProcessSpec.Groups`). Throws naming `ProcessSpec.Groups[i]` for an unknown name.
 */
export function supplementaryGroups(user: ResolvedUser, extra: string[] = [], groupFile = '/etc/group'): number[] {
  const table = readTable(groupFile);
  const out = new Set<number>();
  if (user.name) for (const g of table) if (g.members.includes(user.name)) out.add(g.id);
  extra.forEach((x, i) => {
    if (isId(x)) { out.add(Number(x)); return; }
    const g = table.find((e) => e.name === x);
    if (!g) throw new Error(`ProcessSpec.Groups[${i}]: no group "${x}" in ${groupFile}`);
    out.add(g.id);
  });
  out.delete(user.gid);
  return [...out].sort((a, b) => a - b);
}
