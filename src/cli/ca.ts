/**
 * `shoal ca client-bundle|ls|revoke`: client bundles for the admin API over TCP. The key pair is
 * made here and only the public key goes to the manager, so the private key never crosses the API
 * (nor sits in a daemon's memory or log); the manager signs it with the cluster CA and records it.
 */
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from './args.ts';
import { BUNDLE_FILES } from './client.ts';
import { type Command, FORMAT_OPTION, type Group } from './command.ts';
import { json, table } from './format.ts';
import { invalid, parseChoice, parseDuration } from './units.ts';

interface BundleRecord { Serial: string; Name: string; Role: string; IssuedAt: string; NotAfter: string; RevokedAt?: string }

/** `90d`, `12h`, `30m`: a lifetime in ns (days as well as Go's units: a bundle lives for days). */
export function parseExpiry(raw: string): number {
  const d = /^(\d+)d$/.exec(raw.trim());
  const ns = d ? Number(d[1]) * 24 * 3600e9 : parseDuration('expiry', raw);
  if (ns < 1e9) throw invalid('expiry', raw, 'expected at least 1s (the daemon asks for 1m unless told otherwise)');
  return ns;
}

const clientBundle: Command = {
  name: 'client-bundle',
  summary: 'Make a client bundle (ca.pem, cert.pem, key.pem) for the admin API over TCP',
  usage: '--name NAME --out DIR [OPTIONS]',
  options: [
    { long: 'name', kind: 'string', value: 'NAME', help: 'who the bundle is for (the certificate\'s CN; revoke by it)' },
    { long: 'out', kind: 'string', value: 'DIR', help: 'directory to write ca.pem, cert.pem and key.pem to (made 0700 if missing)' },
    { long: 'role', kind: 'string', value: 'admin|read-only', help: 'admin may do everything; read-only may only read and sees no join tokens (default admin)' },
    { long: 'expiry', kind: 'string', value: 'DURATION', help: 'lifetime, e.g. 90d, 720h (default 90d)' },
    { long: 'force', kind: 'bool', help: 'overwrite a bundle already in DIR' },
  ],
  maxArgs: 0,
  async run(ctx) {
    const name = ctx.args.str('name');
    const out = ctx.args.str('out');
    if (!name) throw new UsageError('--name is required: who the bundle is for');
    if (!out) throw new UsageError('--out is required: the directory to write the bundle to');
    const role = parseChoice('role', ctx.args.str('role') ?? 'admin', ['admin', 'read-only'] as const);
    const expiry = ctx.args.str('expiry');
    const dir = resolve(out);
    const present = BUNDLE_FILES.filter((f) => existsSync(join(dir, f)));
    if (present.length && !ctx.args.bool('force')) throw new UsageError(`${dir} already holds ${present.join(', ')}: choose another --out, or --force to replace them`);
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const issued = await ctx.client().json<BundleRecord & { Certificate: string; CACert: string }>('POST', '/ca/client-certs', {
      body: { Name: name, Role: role, PublicKey: publicKey.export({ type: 'spki', format: 'pem' }), ...(expiry !== undefined ? { Expiry: parseExpiry(expiry) } : {}) },
    });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, 'key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    chmodSync(join(dir, 'key.pem'), 0o600); // an existing file keeps its mode through writeFileSync
    writeFileSync(join(dir, 'cert.pem'), issued.Certificate, { mode: 0o644 });
    writeFileSync(join(dir, 'ca.pem'), issued.CACert, { mode: 0o644 });
    ctx.io.out(`Client bundle for "${issued.Name}" (${issued.Role}, serial ${issued.Serial}, valid until ${issued.NotAfter}) written to ${dir}\n` +
      `Use it with: SHOAL_CERT_PATH=${dir} shoal -H tcp://HOST:PORT …   or   DOCKER_CERT_PATH=${dir} docker --tlsverify -H tcp://HOST:PORT …\n`);
  },
};

const ls: Command = {
  name: 'ls',
  summary: 'List the client bundles that have not expired',
  usage: '[OPTIONS]',
  options: [FORMAT_OPTION],
  maxArgs: 0,
  async run(ctx) {
    const records = await ctx.client().json<BundleRecord[]>('GET', '/ca/client-certs');
    if (ctx.args.str('format') === 'json') return void ctx.io.out(json(records));
    ctx.io.out(table(['SERIAL', 'NAME', 'ROLE', 'EXPIRES', 'REVOKED'], records.map((r) => [r.Serial, r.Name, r.Role, r.NotAfter, r.RevokedAt ?? ''])));
  },
};

const revoke: Command = {
  name: 'revoke',
  summary: 'Revoke client bundles by serial, or every bundle of a name: every manager refuses them at once',
  usage: 'SERIAL|NAME [SERIAL|NAME…]',
  options: [],
  minArgs: 1,
  async run(ctx) {
    const client = ctx.client();
    for (const ref of ctx.args.positionals) {
      const r = await client.json<{ Revoked: string[] }>('POST', `/ca/client-certs/${encodeURIComponent(ref)}/revoke`);
      for (const s of r.Revoked) ctx.io.out(`${s}\n`);
    }
  },
};

export const caGroup: Group = { name: 'ca', summary: 'Client bundles for the admin API over TCP (mutual TLS)', commands: [clientBundle, ls, revoke] };
