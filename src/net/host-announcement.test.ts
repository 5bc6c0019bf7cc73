import { describe, expect, test } from 'bun:test';
import { encode } from '../lib/codec.ts';
import { decodeAnnouncement, encodeAnnouncement, HOST_LIMITS } from './host-announcement.ts';
import { ann } from './host-gossip.test-helper.ts';

describe('announcement codec', () => {
  test('round trip', () => {
    const a = ann('n1', { nets: { net1: ['10.1.0.2', '10.1.0.3'], net2: [] }, addr: 'fd00::1', role: 'manager' });
    const d = decodeAnnouncement(encodeAnnouncement(a));
    expect(d).toEqual({ ok: true, announcement: a });
  });

  test('malformed input is reported, never thrown', () => {
    const bad: [unknown, string][] = [
      [[1, 2], 'not a map'],
      [{ ...ann('n'), t: 'task' }, 't: not "host"'],
      [{ ...ann('n'), v: 'x' }, 'v: not a positive integer'],
      [{ ...ann('n'), node: '' }, 'node:'],
      [{ ...ann('n'), node: 'x'.repeat(HOST_LIMITS.maxIdLength + 1) }, 'node:'],
      [{ ...ann('n'), node: 7 }, 'node:'],
      [{ ...ann('n'), seq: -1 }, 'seq:'],
      [{ ...ann('n'), seq: 1.5 }, 'seq:'],
      [{ ...ann('n'), incarnation: '1' }, 'incarnation:'],
      [{ ...ann('n'), role: 'boss' }, 'role:'],
      [{ ...ann('n'), addr: '10.0.0.256' }, 'addr:'],
      [{ ...ann('n'), addr: 5 }, 'addr:'],
      [{ ...ann('n'), nets: [] }, 'nets: not a map'],
      [{ ...ann('n'), nets: { a: '10.0.0.1' } }, 'nets.a: not an array'],
      [{ ...ann('n'), nets: { a: ['10.0.0.1/24'] } }, 'nets.a[0]: not an IPv4'],
      [{ ...ann('n'), nets: { a: ['fd00::2'] } }, 'nets.a[0]: not an IPv4'],
      [{ ...ann('n'), nets: { a: [1] } }, 'nets.a[0]: not an IPv4'],
      [{ ...ann('n'), nets: { ['x'.repeat(300)]: [] } }, 'network id'],
      [{ ...ann('n'), nets: Object.fromEntries(Array.from({ length: 4097 }, (_, i) => [`n${i}`, []])) }, 'more than 4096 networks'],
      [{ ...ann('n'), nets: { a: Array(40000).fill('10.0.0.1'), b: Array(30000).fill('10.0.0.2') } }, 'more than 65536 addresses'],
    ];
    for (const [value, want] of bad) {
      const d = decodeAnnouncement(encode(value));
      expect(d.ok).toBe(false);
      if (!d.ok) {
        expect(d.reason).toBe('malformed');
        expect(d.detail).toContain(want);
      }
    }
    expect(decodeAnnouncement(new Uint8Array([0x92, 0x01]))).toMatchObject({ ok: false, reason: 'undecodable' });
    expect(decodeAnnouncement(new Uint8Array(HOST_LIMITS.maxBytes + 1))).toMatchObject({ ok: false, reason: 'tooLarge' });
    // A newer version is not an error: it is told apart so that it can be counted and ignored.
    expect(decodeAnnouncement(encode({ t: 'host', v: 2, whatever: true }))).toMatchObject({ ok: false, reason: 'unknownVersion' });
    // Deep nesting (a stack overflow inside msgpackr) is undecodable, not a crash.
    const deep = new Uint8Array(HOST_LIMITS.maxBytes).fill(0x91);
    expect(decodeAnnouncement(deep).ok).toBe(false);
    // Random bytes never throw.
    for (let i = 0; i < 2000; i++) {
      const b = crypto.getRandomValues(new Uint8Array(1 + (i % 64)));
      expect(() => decodeAnnouncement(b)).not.toThrow();
    }
    // Nor does a truncated valid announcement.
    const full = encodeAnnouncement(ann('n', { nets: { a: ['10.0.0.1', '10.0.0.2'] } }));
    for (let n = 0; n < full.length; n++) expect(decodeAnnouncement(full.subarray(0, n)).ok).toBe(false);
  });

  test('the sender refuses what the receiver would', () => {
    expect(() => encodeAnnouncement(ann('n', { nets: { a: ['nope'] } }))).toThrow(RangeError);
  });
});
