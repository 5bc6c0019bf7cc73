import { describe, expect, test } from 'bun:test';
import { interpolate, interpolateTree } from './interpolate.ts';

const env = { A: 'a', EMPTY: '', PORT: '8080' };

describe('interpolate', () => {
  test('plain and braced variables, $$ for a dollar', () => {
    expect(interpolate('x$A-${A}y $$A $', env, 'f')).toBe('xa-ay $A $');
  });
  test('defaults with and without a colon', () => {
    expect(interpolate('${NOPE:-d} ${EMPTY:-d} ${EMPTY-d} ${NOPE-d}', env, 'f')).toBe('d d  d');
  });
  test('nested defaults', () => {
    expect(interpolate('${NOPE:-${PORT}}', env, 'f')).toBe('8080');
  });
  test('alternative values', () => {
    expect(interpolate('[${A:+on}] [${EMPTY:+on}] [${EMPTY+on}]', env, 'f')).toBe('[on] [] [on]');
  });
  test('a required variable names itself and the path', () => {
    expect(() => interpolate('${NOPE:?give a port}', env, 'services.web.ports[0]')).toThrow('services.web.ports[0]: required variable NOPE is missing a value: give a port');
  });
  test('unset variables are empty and reported', () => {
    const unset = new Set<string>();
    expect(interpolate('<$NOPE>', env, 'f', unset)).toBe('<>');
    expect([...unset]).toEqual(['NOPE']);
  });
  test('malformed', () => {
    expect(() => interpolate('${A', env, 'f')).toThrow('unterminated');
    expect(() => interpolate('${1x}', env, 'f')).toThrow('invalid variable');
  });
  test('a tree: strings only, keys untouched', () => {
    expect(interpolateTree({ $A: ['${PORT}:80', 3, true] }, env)).toEqual({ $A: ['8080:80', 3, true] });
  });
});
