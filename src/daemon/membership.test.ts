import { expect, test } from 'bun:test';
import { DEFAULT_CLUSTER_PORT, formatHostPort, parseHostPort, toMultiaddrString } from './membership.ts';

test('--listen-addr/--advertise-addr: IP:PORT, IP, :PORT, [IPv6]:PORT; bad input named', () => {
  expect(parseHostPort('--listen-addr', '10.0.0.1:5000')).toEqual({ host: '10.0.0.1', port: 5000 });
  expect(parseHostPort('--listen-addr', '10.0.0.1')).toEqual({ host: '10.0.0.1', port: DEFAULT_CLUSTER_PORT });
  expect(parseHostPort('--listen-addr', ':5000')).toEqual({ host: '0.0.0.0', port: 5000 });
  expect(parseHostPort('--listen-addr', '[::1]:5000')).toEqual({ host: '::1', port: 5000 });
  expect(toMultiaddrString({ host: '::1', port: 5000 })).toBe('/ip6/::1/tcp/5000');
  expect(formatHostPort({ host: '::1', port: 5000 })).toBe('[::1]:5000');
  expect(() => parseHostPort('--join', 'manager.example:4242')).toThrow('--join "manager.example:4242": expected IP:PORT with a numeric IP address');
  expect(() => parseHostPort('--listen-addr', '10.0.0.1:70000')).toThrow('the port must be 1–65535');
  expect(() => parseHostPort('--listen-addr', '300.1.1.1:1')).toThrow('numeric IP');
});
