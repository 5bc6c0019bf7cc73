import { describe, expect, test } from 'bun:test';
import { medianInterval, parseWrk } from './mesh.ts';

describe('mesh bench statistics', () => {
  test('the 95% interval of a median of 24 samples is the 7th to the 18th smallest', () => {
    const xs = Array.from({ length: 24 }, (_, i) => 24 - i); // 24..1, unsorted on purpose
    expect(medianInterval(xs)).toEqual([7, 18]);
  });

  test('small samples get the whole range; 9 samples the 2nd to the 8th', () => {
    expect(medianInterval([3, 1, 2])).toEqual([1, 3]);
    expect(medianInterval(Array.from({ length: 9 }, (_, i) => i + 1))).toEqual([2, 8]);
    expect(medianInterval([])).toEqual([NaN, NaN]);
  });

  test("wrk's output is read, and errors in it refused", () => {
    const out = `Running 2s test @ http://127.0.0.1:1/
  Latency Distribution
     50%   38.00us
     75%   50.00us
     90%   60.00us
     99%    1.20ms
  1000 requests in 2.00s, 1.00MB read
Requests/sec:  500.50
`;
    expect(parseWrk(out)).toEqual({ rps: 500.5, p50Us: 38, p99Us: 1200 });
    expect(() => parseWrk(out.replace('Requests/sec', 'Non-2xx or 3xx responses: 3\nRequests/sec'))).toThrow(/errors/);
  });
});
