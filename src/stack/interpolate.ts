/**
 * Compose variable interpolation over every string of a loaded file: `$VAR`, `${VAR}`,
 * `${VAR:-default}` / `${VAR-default}`, `${VAR:?error}` / `${VAR?error}`, `${VAR:+alt}` / `${VAR+alt}`,
 * `$$` for a literal `$`. Defaults may themselves hold variables. An unset variable without a
 * default is empty, and reported once, as docker does.
 */
export type Env = Record<string, string | undefined>;

export class InterpolationError extends Error {
  override name = 'InterpolationError';
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

/** Where `${` at `start` closes, counting nested `${…}` in defaults. */
function closing(s: string, start: number): number {
  let depth = 0;
  for (let i = start; i < s.length; i++) {
    if (s[i] === '$' && s[i + 1] === '{') {
      depth++;
      i++;
    } else if (s[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

export function interpolate(s: string, env: Env, where: string, unset: Set<string> = new Set()): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch !== '$') {
      out += ch;
      continue;
    }
    const next = s[i + 1];
    if (next === '$') {
      out += '$';
      i++;
    } else if (next === '{') {
      const end = closing(s, i);
      if (end < 0) throw new InterpolationError(`${where}: unterminated "\${" in "${s}"`);
      out += substitute(s.slice(i + 2, end), env, where, unset);
      i = end;
    } else {
      const m = NAME.exec(s.slice(i + 1));
      if (!m) {
        out += '$';
        continue;
      }
      out += lookup(m[0], env, unset);
      i += m[0].length;
    }
  }
  return out;
}

function lookup(name: string, env: Env, unset: Set<string>): string {
  const v = env[name];
  if (v === undefined) unset.add(name);
  return v ?? '';
}

function substitute(body: string, env: Env, where: string, unset: Set<string>): string {
  const m = NAME.exec(body);
  if (!m) throw new InterpolationError(`${where}: invalid variable "\${${body}}"`);
  const name = m[0];
  const rest = body.slice(name.length);
  if (rest === '') return lookup(name, env, unset);
  const op = /^(:?[-?+])/.exec(rest)?.[1];
  if (!op) throw new InterpolationError(`${where}: invalid variable "\${${body}}"`);
  const arg = () => interpolate(rest.slice(op.length), env, where, unset);
  const v = env[name];
  // With a colon an empty value counts as unset, as in the shell.
  const missing = op.startsWith(':') ? v === undefined || v === '' : v === undefined;
  switch (op.at(-1)) {
    case '-':
      return missing ? arg() : v!;
    case '?':
      if (missing) throw new InterpolationError(`${where}: required variable ${name} is missing a value: ${arg() || `${name} is not set`}`);
      return v!;
    default:
      return missing ? '' : arg();
  }
}

/** Every string (values, not keys) of a parsed YAML tree, interpolated; `where` names the path in errors. */
export function interpolateTree(tree: unknown, env: Env, unset: Set<string> = new Set(), where = ''): unknown {
  if (typeof tree === 'string') return interpolate(tree, env, where || '(top)', unset);
  if (Array.isArray(tree)) return tree.map((x, i) => interpolateTree(x, env, unset, `${where}[${i}]`));
  if (tree && typeof tree === 'object') {
    return Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, interpolateTree(v, env, unset, where ? `${where}.${k}` : k)]));
  }
  return tree;
}
