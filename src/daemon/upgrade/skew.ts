/**
 * The version-skew rule of a rolling upgrade: nodes one minor version apart (N and N+1, same major)
 * interoperate; anything further is refused before a byte moves, naming both versions.
 */
import { InvalidArgumentError } from '../../lib/errors.ts';

export interface ParsedVersion { major: number; minor: number; patch: number }

/** MAJOR.MINOR.PATCH with an optional pre-release tail (0.1.0, 0.2.0-dev); null when it is not one. */
export function parseVersion(v: string): ParsedVersion | null {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.-]+)?$/.exec(v.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) } : null;
}

/** How many minor versions apart two versions are; Infinity across majors or when one is not a version. */
export function minorDistance(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  if (!x || !y || x.major !== y.major) return Infinity;
  return Math.abs(x.minor - y.minor);
}

/** Null when `target` may run beside every one of `current`; else why not, naming both versions. */
export function skewProblem(target: string, current: { name: string; version: string }[]): string | null {
  if (!parseVersion(target)) return `version "${target}" is not MAJOR.MINOR.PATCH`;
  for (const c of current) {
    if (!c.version) continue; // a node that has not reported yet: checked when it does
    if (minorDistance(target, c.version) > 1) {
      return `version ${target} is more than one minor version away from ${c.version} (${c.name}): shoal nodes interoperate only with N and N+1; upgrade through each minor version in turn`;
    }
  }
  return null;
}

/** Throws a clear error when `target` may not join or replace `current`. */
export function checkSkew(target: string, current: { name: string; version: string }[]): void {
  const p = skewProblem(target, current);
  if (p) throw new InvalidArgumentError(p);
}
