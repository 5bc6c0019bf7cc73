import { expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseExpiry } from './ca.ts';
import { certPath, Client, ConnectError, loadClientTls, parseHost } from './client.ts';

test('hosts: tcp:// is TLS, plain http:// is refused, unix paths unchanged', () => {
  expect(parseHost('tcp://10.0.0.1:2376')).toEqual({ base: 'https://10.0.0.1:2376', tls: true });
  expect(parseHost('unix:///run/shoal.sock')).toEqual({ base: 'http://localhost', unix: '/run/shoal.sock' });
  expect(() => parseHost('http://10.0.0.1:2376')).toThrow('the admin API has no plain HTTP over TCP; use tcp://host:port');
});

test('the bundle: SHOAL_CERT_PATH, else ~/.shoal; a missing file says how to get one', () => {
  expect(certPath({ SHOAL_CERT_PATH: '/b' })).toBe('/b');
  expect(certPath({ HOME: '/home/u' })).toBe('/home/u/.shoal');
  const dir = mkdtempSync(join(tmpdir(), 'shoal-bundle-'));
  try {
    for (const f of ['ca.pem', 'cert.pem']) writeFileSync(join(dir, f), f);
    expect(() => loadClientTls(dir, 'tcp://h:1')).toThrow(ConnectError);
    expect(() => new Client('tcp://h:1', dir)).toThrow(`tcp://h:1 needs a client bundle (mutual TLS), and ${join(dir, 'key.pem')} cannot be read (ENOENT): on a manager run "shoal ca client-bundle`);
    writeFileSync(join(dir, 'key.pem'), 'k');
    expect(loadClientTls(dir, 'tcp://h:1')).toEqual({ ca: 'ca.pem', cert: 'cert.pem', key: 'k' });
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('--expiry takes days as well as Go durations', () => {
  expect(parseExpiry('90d')).toBe(90 * 24 * 3600e9);
  expect(parseExpiry('1h30m')).toBe(5400e9);
  expect(() => parseExpiry('5')).toThrow('invalid value "5" for --expiry');
  expect(() => parseExpiry('500ms')).toThrow('expected at least 1s');
});
