/**
 * Compose files → one plain object: YAML parsed by the `yaml` library (anchors and `<<` merge keys
 * included), variables interpolated from the environment (and a `.env` beside the first file), then
 * later files merged over earlier ones as `docker stack deploy -c a.yml -c b.yml` does: maps merge
 * key by key, anything else is replaced.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type * as Yaml from 'yaml';
import { type Env, interpolateTree } from './interpolate.ts';

export class ComposeError extends Error {
  override name = 'ComposeError';
}

export type Tree = Record<string, unknown>;

export interface Loaded {
  tree: Tree;
  /** Directory of the first file: relative paths (env_file, secrets' file) resolve from it. */
  dir: string;
  /** Variables used but unset (they became empty strings). */
  unset: string[];
}

export function isMap(v: unknown): v is Tree {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

function merge(base: unknown, over: unknown): unknown {
  if (!isMap(base) || !isMap(over)) return over;
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? merge(out[k], v) : v;
  return out;
}

/** `KEY=VALUE` lines; `#` comments and blank lines skipped; quotes around a value removed. */
export function parseEnvFile(text: string, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  text.split(/\r?\n/).forEach((line, i) => {
    const l = line.replace(/^\s*export\s+/, '').trim();
    if (!l || l.startsWith('#')) return;
    const eq = l.indexOf('=');
    if (eq <= 0) throw new ComposeError(`${where} line ${i + 1}: expected KEY=VALUE, got "${l}"`);
    let v = l.slice(eq + 1).trim();
    if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v.at(-1) === v[0]) v = v.slice(1, -1);
    out[l.slice(0, eq).trim()] = v;
  });
  return out;
}

// yaml is a sixth of the bundle's JavaScript and only `stack deploy` reads YAML, while every daemon
// starts through the CLI modules that import this one: required on first use (the bundle evaluates
// a required module then), a daemon never evaluates it.
let yaml: typeof Yaml | undefined;
const loadYaml = (): typeof Yaml => (yaml ??= require('yaml') as typeof Yaml);

/** `mode: 0440` is octal in compose files (Go's YAML reads a leading 0 so), not YAML 1.2's decimal. */
const GO_OCTAL: Yaml.ScalarTag = { tag: 'tag:yaml.org,2002:int', default: true, test: /^0[0-7]+$/, resolve: (s) => parseInt(s, 8) };

/** Parses and interpolates YAML text (one file). */
export function parseCompose(text: string, where: string, env: Env, unset: Set<string>): Tree {
  let doc: unknown;
  try {
    doc = loadYaml().parse(text, { merge: true, maxAliasCount: 1000, customTags: (tags) => [GO_OCTAL, ...tags] });
  } catch (e) {
    throw new ComposeError(`${where}: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (!isMap(doc)) throw new ComposeError(`${where}: expected a mapping at the top (services:, networks:, …)`);
  return interpolateTree(doc, env, unset) as Tree;
}

export function loadCompose(files: readonly string[], processEnv: Env): Loaded {
  if (!files.length) throw new ComposeError('no compose file given: use -c FILE');
  const dir = files[0] === '-' ? process.cwd() : dirname(resolve(files[0]!));
  const dotEnv = resolve(dir, '.env');
  // The shell wins over .env, as compose has it.
  const env: Env = { ...(existsSync(dotEnv) ? parseEnvFile(readFileSync(dotEnv, 'utf8'), dotEnv) : {}), ...processEnv };
  const unset = new Set<string>();
  let tree: unknown = {};
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f === '-' ? 0 : f, 'utf8');
    } catch (e) {
      throw new ComposeError(`cannot read compose file ${f}: ${(e as Error).message}`);
    }
    tree = merge(tree, parseCompose(text, f, env, unset));
  }
  return { tree: tree as Tree, dir, unset: [...unset].sort() };
}
