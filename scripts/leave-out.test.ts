import { describe, expect, test } from 'bun:test';
import { ABSENT, absentSource, LEFT_OUT, stubSource } from './leave-out.ts';

/** Evaluate a stub as the bundle would a CommonJS module. */
function load(pkg: string): any {
  const module = { exports: {} as unknown };
  new Function('module', stubSource(pkg))(module);
  return module.exports;
}

describe('leave-out stubs', () => {
  test('reading an export at load (docker-modem reads ssh2.Client) does not throw', () => {
    expect(() => load('ssh2').Client).not.toThrow();
    expect(load('ssh2').__esModule).toBe(false);
  });

  test('using an export throws, naming the package', () => {
    for (const pkg of LEFT_OUT) {
      const stub = load(pkg);
      expect(() => new stub.Client()).toThrow(`${pkg} is left out of the shoal executable`);
      expect(() => stub.loadSync('x.proto')).toThrow(pkg);
    }
  });

  test('an absent optional package throws when required, naming it (msgpackr catches that and uses its JavaScript decoder)', () => {
    for (const pkg of ABSENT) expect(() => new Function('module', absentSource(pkg))({ exports: {} })).toThrow(`${pkg} is left out`);
  });
});
