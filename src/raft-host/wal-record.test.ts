import { describe, expect, test } from 'bun:test';
import type { Entry } from '../raft/index.ts';
import { decodeEntries, encodeEntries, encodeRecord, encodeRecordParts, packr } from './wal-record.ts';

const INTS = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffff_ffff, 0x1_0000_0000, Number.MAX_SAFE_INTEGER];
const LENGTHS = [0, 1, 0xff, 0x100, 0xffff, 0x10000];

function entries(n: number): Entry[] {
  return Array.from({ length: n }, (_, i) => ({
    term: INTS[i % INTS.length]!,
    index: INTS[(i * 7) % INTS.length]!,
    type: i % 3 === 0 ? 'conf' : 'normal',
    data: new Uint8Array(LENGTHS[i % LENGTHS.length]!).fill(i & 0xff),
  }));
}

describe('entry records', () => {
  test('packr reads the hand-written encoding as the array of [term, index, type code, data] it stands for', () => {
    for (const n of [0, 1, 15, 16, 300]) {
      const es = entries(n);
      const raw = packr.unpack(encodeEntries(es)) as [number, number, number, Uint8Array][];
      expect(raw.length).toBe(n);
      raw.forEach(([term, index, code, data], i) => {
        expect([term, index, code]).toEqual([es[i]!.term, es[i]!.index, es[i]!.type === 'conf' ? 1 : 0]);
        expect(Buffer.from(data).equals(Buffer.from(es[i]!.data))).toBe(true);
      });
      expect(decodeEntries(encodeEntries(es))).toEqual(es);
    }
  });

  test('a record packr wrote earlier still decodes', () => {
    const es = entries(20);
    const old = packr.pack(es.map((e) => [e.term, e.index, e.type === 'conf' ? 1 : 0, e.data]));
    expect(decodeEntries(old)).toEqual(es);
  });
});

describe('record parts', () => {
  test('head and payload written one after the other are the record encodeRecord makes', () => {
    for (const n of [0, 1, 300, 70_000]) {
      const payload = new Uint8Array(n).map((_, i) => i * 7);
      const [head, body] = encodeRecordParts(0x82, payload);
      const joined = new Uint8Array(head.length + body.length);
      joined.set(head);
      joined.set(body, head.length);
      expect([...joined]).toEqual([...encodeRecord(0x82, payload)]);
    }
  });
});
