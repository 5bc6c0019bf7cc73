import { describe, expect, test } from 'bun:test';
import { LogDemuxer, parseLine, parseTime } from './logs.ts';

function frame(kind: 1 | 2, text: string): Uint8Array {
  const body = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + body.length);
  out[0] = kind;
  new DataView(out.buffer).setUint32(4, body.length);
  out.set(body, 8);
  return out;
}
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) { out.set(p, off); off += p.length; }
  return out;
};

describe('container log demultiplexing', () => {
  const t1 = '2026-11-25T08:00:00.123456789Z';
  const t2 = '2026-11-25T08:00:01.5Z';

  test('frames of both streams, with timestamps', () => {
    const d = new LogDemuxer();
    const lines = d.push(cat(frame(1, `${t1} one\n`), frame(2, `${t2} two\n`)));
    expect(lines).toEqual([
      { stream: 'stdout', time: Date.parse('2026-11-25T08:00:00.123Z'), line: 'one' },
      { stream: 'stderr', time: Date.parse('2026-11-25T08:00:01.500Z'), line: 'two' },
    ]);
    expect(d.end()).toEqual([]);
  });

  test('a chunk may end inside a header, a payload or a line', () => {
    const bytes = cat(frame(1, `${t1} hello `), frame(1, `world\n${t2} héllo\n`), frame(2, `${t2} tail`));
    for (let cut = 1; cut < bytes.length; cut += 3) {
      const d = new LogDemuxer();
      const lines = [...d.push(bytes.subarray(0, cut)), ...d.push(bytes.subarray(cut)), ...d.end()];
      expect(lines.map((l) => `${l.stream}:${l.line}`)).toEqual(['stdout:hello world', 'stdout:héllo', 'stderr:tail']);
    }
  });

  test('a multi-byte character split across frames survives', () => {
    const enc = new TextEncoder().encode(`${t1} é\n`);
    const at = enc.indexOf(0xc3) + 1;
    const f = (b: Uint8Array) => { const o = new Uint8Array(8 + b.length); o[0] = 1; new DataView(o.buffer).setUint32(4, b.length); o.set(b, 8); return o; };
    const d = new LogDemuxer();
    expect(d.push(cat(f(enc.subarray(0, at)), f(enc.subarray(at)))).map((l) => l.line)).toEqual(['é']);
  });

  test('a corrupt header is an error, not a huge buffer', () => {
    expect(() => new LogDemuxer().push(new Uint8Array([7, 0, 0, 0, 0, 0, 0, 1, 65]))).toThrow(/bad frame header/);
    expect(() => new LogDemuxer().push(new Uint8Array([1, 0, 0, 0, 0x7f, 0, 0, 0]))).toThrow(/bad frame header/);
  });

  test('times: nanoseconds truncate to ms; a line without a time keeps its text', () => {
    expect(parseTime('2026-11-25T08:00:00.999999999Z')).toBe(Date.parse('2026-11-25T08:00:00.999Z'));
    expect(parseTime('2026-11-25T08:00:00Z')).toBe(Date.parse('2026-11-25T08:00:00Z'));
    expect(parseTime('2026-11-25T09:00:00.25+01:00')).toBe(Date.parse('2026-11-25T08:00:00.250Z'));
    expect(parseTime('yesterday')).toBeUndefined();
    expect(parseLine('stdout', 'no time here').line).toBe('no time here');
    expect(parseLine('stdout', `2026-11-25T08:00:00Z crlf\r`).line).toBe('crlf');
  });
});
