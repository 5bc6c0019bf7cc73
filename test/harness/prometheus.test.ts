import { expect, test } from 'bun:test';
import { parsePrometheusText, Scrape } from './prometheus.ts';

const GOOD = `# HELP up_total Things.
# TYPE up_total counter
up_total{service="a",direction="in"} 3
up_total{service="b \\"q\\"",direction="in"} 1.5e3
# TYPE lat_seconds histogram
lat_seconds_bucket{le="0.1",runtime="process"} 1
lat_seconds_bucket{le="+Inf",runtime="process"} 2
lat_seconds_sum{runtime="process"} 0.3
lat_seconds_count{runtime="process"} 2
# TYPE g gauge
g NaN
# TYPE h gauge
h Nan
`;

test('reads families, labels (escapes too), histograms by their other labels', () => {
  const s = new Scrape(GOOD);
  expect(s.value('up_total', { service: 'a' })).toBe(3);
  expect(s.value('up_total', { service: 'b "q"' })).toBe(1500);
  expect(s.count('lat_seconds', { runtime: 'process' })).toBe(2);
  expect(s.family('lat_seconds').type).toBe('histogram');
  expect(Number.isNaN(s.value('g'))).toBe(true);
  expect(Number.isNaN(s.value('h'))).toBe(true); // prom-client's spelling; Prometheus reads it
  expect(parsePrometheusText('# TYPE i gauge\ni -Inf\n').get('i')!.samples[0]!.value).toBe(-Infinity);
  expect(() => s.family('absent')).toThrow('no metric family absent');
});

test('refuses what Prometheus would', () => {
  expect(() => parsePrometheusText('x 1\n')).toThrow('belongs to no family');
  expect(() => parsePrometheusText('# TYPE x gauge\nx one\n')).toThrow('is not a number');
  expect(() => parsePrometheusText('# TYPE x gauge\nx{a="1" 1\n')).toThrow('malformed');
  expect(() => parsePrometheusText('# TYPE x gauge\nx{a="1"} 1\nx{a="1"} 2\n')).toThrow('given twice');
  expect(() => parsePrometheusText('# TYPE x wobbly\n')).toThrow('unknown type');
  expect(() => parsePrometheusText('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_count 1\n')).toThrow('not cumulative');
  expect(() => parsePrometheusText('# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_count 3\n')).toThrow('differs from the +Inf bucket');
  expect(() => parsePrometheusText('# TYPE h histogram\nh_bucket{le="1"} 2\nh_count 2\n')).toThrow('no +Inf bucket');
});
