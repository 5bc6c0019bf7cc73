import { expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADDRESSES_FILE, DEFAULT_CLUSTER_PORT, formatHostPort, parseHostPort, rememberAddrs, toMultiaddrString } from './membership.ts';

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

test('the addresses a host was started with are remembered for a start without the flags', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-addrs-'));
  try {
    expect(rememberAddrs(dir, {})).toEqual({});
    expect(rememberAddrs(dir, { listenAddr: '127.0.0.9:4300' })).toEqual({ listenAddr: '127.0.0.9:4300' });
    expect(rememberAddrs(dir, {})).toEqual({ listenAddr: '127.0.0.9:4300' });
    // Given again, the new ones replace the old ones, advertise address included.
    expect(rememberAddrs(dir, { listenAddr: '0.0.0.0:4301', advertiseAddr: '10.1.2.3:4301' })).toEqual({ listenAddr: '0.0.0.0:4301', advertiseAddr: '10.1.2.3:4301' });
    expect(rememberAddrs(dir, {})).toEqual({ listenAddr: '0.0.0.0:4301', advertiseAddr: '10.1.2.3:4301' });
    writeFileSync(join(dir, ADDRESSES_FILE), '{not json');
    expect(() => rememberAddrs(dir, {})).toThrow(/addresses\.json: not readable JSON.*--listen-addr/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
