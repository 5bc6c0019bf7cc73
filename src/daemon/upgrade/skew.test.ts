import { describe, expect, test } from 'bun:test';
import { checkSkew, minorDistance, parseVersion, skewProblem } from './skew.ts';

describe('version skew', () => {
  test('parses MAJOR.MINOR.PATCH with a pre-release tail, nothing else', () => {
    expect(parseVersion('0.1.0')).toEqual({ major: 0, minor: 1, patch: 0 });
    expect(parseVersion('1.12.3-dev')).toEqual({ major: 1, minor: 12, patch: 3 });
    expect(parseVersion('1.2')).toBeNull();
    expect(parseVersion('latest')).toBeNull();
  });

  test('N and N+1 interoperate, in either direction; two minors or another major do not', () => {
    expect(minorDistance('0.1.0', '0.2.5')).toBe(1);
    expect(minorDistance('0.2.0', '0.1.0')).toBe(1);
    expect(minorDistance('0.1.0', '0.3.0')).toBe(2);
    expect(minorDistance('0.9.0', '1.0.0')).toBe(Infinity);
    expect(skewProblem('0.2.0', [{ name: 'node a', version: '0.1.0' }, { name: 'node b', version: '0.2.0' }])).toBeNull();
  });

  test('the refusal names the target, the node and its version', () => {
    expect(() => checkSkew('0.3.0', [{ name: 'node a', version: '0.2.0' }, { name: 'node b', version: '0.1.0' }]))
      .toThrow('version 0.3.0 is more than one minor version away from 0.1.0 (node b)');
    expect(() => checkSkew('three', [])).toThrow('"three" is not MAJOR.MINOR.PATCH');
  });
});
