/**
 * Placement constraints, as in `docker service create --constraint`: `node.role==manager`,
 * `node.labels.zone!=eu-1`. Parsing is separate from matching so that the API can refuse a bad
 * constraint with a 400 before anything is stored, and the orchestrator (global services) and the
 * scheduler match with the same rules.
 */
import { InvalidArgumentError } from '../../lib/errors.ts';
import type { Node } from '../../types/index.ts';

export type ConstraintOp = '==' | '!=';

export interface Constraint {
  /** As written, for messages. */
  raw: string;
  /** Lower-cased key: `node.id`, `node.hostname`, `node.role`, `node.platform.os`, `node.platform.arch`, `node.labels.<k>`, `engine.labels.<k>`. */
  key: string;
  op: ConstraintOp;
  value: string;
}

const PLAIN_KEYS = new Set(['node.id', 'node.hostname', 'node.role', 'node.platform.os', 'node.platform.arch']);
const LABEL_PREFIXES = ['node.labels.', 'engine.labels.'];
const VALID_KEYS = 'node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.<key>, engine.labels.<key>';

/** Parse one constraint; throws InvalidArgumentError naming it. */
export function parseConstraint(raw: string): Constraint {
  const bad = (why: string) => new InvalidArgumentError(`invalid constraint "${raw}": ${why}`);
  if (typeof raw !== 'string') throw bad('must be a string');
  const eq = raw.indexOf('==');
  const ne = raw.indexOf('!=');
  if (eq < 0 && ne < 0) throw bad('expected an operator == or !=');
  const at = eq >= 0 && (ne < 0 || eq < ne) ? eq : ne;
  const op: ConstraintOp = at === eq ? '==' : '!=';
  const keyAsWritten = raw.slice(0, at).trim();
  const value = raw.slice(at + 2).trim();
  if (!keyAsWritten) throw bad('missing key before the operator');
  if (!value) throw bad('missing value after the operator');
  if (value.includes('==') || value.includes('!=')) throw bad('more than one operator');
  // Label names keep their case; the fixed part of the key does not matter.
  const lower = keyAsWritten.toLowerCase();
  const prefix = LABEL_PREFIXES.find((p) => lower.startsWith(p));
  let key: string;
  if (prefix) {
    const label = keyAsWritten.slice(prefix.length);
    if (!label) throw bad(`missing label name after "${prefix}"`);
    key = prefix + label;
  } else if (PLAIN_KEYS.has(lower)) {
    key = lower;
  } else {
    throw bad(`unknown key "${keyAsWritten}" (valid keys: ${VALID_KEYS})`);
  }
  return { raw, key, op, value };
}

/** Parse a service's `Placement.Constraints`; throws InvalidArgumentError naming the first bad one. */
export function parseConstraints(list: readonly string[] | undefined | null): Constraint[] {
  if (list == null) return [];
  if (!Array.isArray(list)) throw new InvalidArgumentError('Placement.Constraints must be a list of strings');
  return list.map(parseConstraint);
}

/** The node's value for a constraint key, or undefined when the node has none (an absent label). */
function nodeValue(node: Node, key: string): string | undefined {
  switch (key) {
    case 'node.id':
      return node.ID;
    case 'node.hostname':
      return node.Description?.Hostname;
    case 'node.role':
      return node.Spec?.Role;
    case 'node.platform.os':
      return node.Description?.Platform?.OS;
    case 'node.platform.arch':
      return node.Description?.Platform?.Architecture;
  }
  if (key.startsWith('node.labels.')) return node.Spec?.Labels?.[key.slice('node.labels.'.length)];
  if (key.startsWith('engine.labels.')) return node.Description?.Engine?.Labels?.[key.slice('engine.labels.'.length)];
  return undefined;
}

/** Values compare case-insensitively, as Docker does; `!=` holds for a node without the label. */
export function matchConstraint(c: Constraint, node: Node): boolean {
  const v = nodeValue(node, c.key);
  const equal = v !== undefined && v.toLowerCase() === c.value.toLowerCase();
  return c.op === '==' ? equal : !equal;
}

export function matchConstraints(constraints: readonly Constraint[], node: Node): boolean {
  return constraints.every((c) => matchConstraint(c, node));
}

/**
 * For stages: match a spec's raw constraint list, treating an unparseable list (which the API should
 * have refused) as matching no node.
 */
export function nodeSatisfies(raw: readonly string[] | undefined, node: Node): boolean {
  if (!raw || raw.length === 0) return true;
  let parsed: Constraint[];
  try {
    parsed = parseConstraints(raw);
  } catch {
    return false;
  }
  return matchConstraints(parsed, node);
}
