import { afterAll, describe, expect, test } from 'bun:test';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fleetHandler, installScriptFor, parseFleetAddr, startFleetHttp } from './fleet-http.ts';

const dir = mkdtempSync(join(tmpdir(), 'shoal-fleet-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const exe = join(dir, 'shoal');
writeFileSync(exe, 'not really an executable\n');
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

const get = (h: (r: Request) => Promise<Response>, path: string, init: RequestInit & { host?: string } = {}) =>
  h(new Request(`http://fleet.example${path}`, { ...init, headers: { host: init.host ?? '10.0.0.5:4243' } }));

describe('fleet http', () => {
  const handler = fleetHandler({ executablePath: exe, arch: 'amd64' });

  test('install.sh points back at this server through the Host the client used', async () => {
    const r = await get(handler, '/install.sh');
    expect(r.status).toBe(200);
    const body = await r.text();
    expect(body).toContain("\nSHOAL_DEFAULT_URL='http://10.0.0.5:4243/shoal'\n");
    expect(body).toContain("\nSHOAL_DEFAULT_ARCH='amd64'\n");
    expect(body.startsWith('#!/bin/sh\n')).toBe(true);
  });

  test('a Host header that is not host[:port] is refused (it would land in a shell script)', async () => {
    for (const host of ["x';rm -rf /;'", 'a b', 'h/x', '']) expect((await get(handler, '/install.sh', { host })).status).toBe(400);
    expect((await get(handler, '/install.sh', { host: '[fd00::1]:4243' })).status).toBe(200);
  });

  test('the executable and its sha256, which follows the file when it changes', async () => {
    expect(await (await get(handler, '/shoal')).text()).toBe('not really an executable\n');
    expect(await (await get(handler, '/shoal.sha256')).text()).toBe(`${sha('not really an executable\n')}  shoal\n`);
    writeFileSync(exe, 'a newer one\n');
    expect(await (await get(handler, '/shoal.sha256')).text()).toBe(`${sha('a newer one\n')}  shoal\n`);
  });

  test('nothing else: other paths 404, other methods 405', async () => {
    for (const p of ['/', '/_ping', '/v1.47/swarm', '/services', '/shoal/../install.sh.bak']) expect((await get(handler, p)).status).toBe(404);
    expect((await get(handler, '/shoal', { method: 'POST' })).status).toBe(405);
  });

  test('a daemon running from source has nothing to serve', async () => {
    const h = fleetHandler({ executablePath: null, arch: 'amd64' });
    const r = await get(h, '/install.sh');
    expect(r.status).toBe(404);
    expect(await r.text()).toContain('build dist/shoal');
  });

  test('installScriptFor quotes the URL for sh', () => {
    expect(installScriptFor("http://h/it's", 'arm64')).toContain("SHOAL_DEFAULT_URL='http://h/it'\\''s'");
  });

  test('--fleet-addr parsing', () => {
    expect(parseFleetAddr('0.0.0.0:4243')).toEqual({ hostname: '0.0.0.0', port: 4243 });
    expect(parseFleetAddr(':4243')).toEqual({ hostname: '0.0.0.0', port: 4243 });
    expect(parseFleetAddr('[::1]:0')).toEqual({ hostname: '::1', port: 0 });
    expect(() => parseFleetAddr('4243')).toThrow('--fleet-addr "4243": expected IP:PORT');
    expect(() => parseFleetAddr('h:99999')).toThrow('expected IP:PORT');
  });

  test('startFleetHttp serves on a real port', async () => {
    const logs: string[] = [];
    const s = startFleetHttp('127.0.0.1:0', (m) => logs.push(m), { executablePath: exe, arch: 'amd64' });
    try {
      const r = await fetch(`http://127.0.0.1:${s.port}/install.sh`);
      expect(await r.text()).toContain(`SHOAL_DEFAULT_URL='http://127.0.0.1:${s.port}/shoal'`);
      expect(logs.join('\n')).toContain(`on http://127.0.0.1:${s.port}`);
    } finally {
      s.stop(true);
    }
  });
});
