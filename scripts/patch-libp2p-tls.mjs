#!/usr/bin/env node
/**
 * Run by npm as `postinstall`. Patches @libp2p/tls for Bun: Bun's TLSSocket throws
 * ERR_TLS_ALPN_CALLBACK_WITH_PROTOCOLS when the server side is given both `ALPNProtocols` and
 * `ALPNCallback` (Node accepts both), so the first inbound TLS connection would crash a listening
 * node. The server only needs the callback; the client keeps `ALPNProtocols`.
 *
 * Idempotent: a patched file is left alone. If the file matches neither the original nor the
 * patched text (a new @libp2p/tls version), this fails the install loudly rather than ship a node
 * that a stranger can crash: re-check the patch against the new version and update it here.
 * Plain JavaScript, no dependencies: npm runs it with whatever Node it has.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const file = join(root, 'node_modules', '@libp2p', 'tls', 'dist', 'src', 'tls.js');
const pkgFile = join(root, 'node_modules', '@libp2p', 'tls', 'package.json');
const MARK = '// shoal-patch: bun-alpn';

const ORIGINAL = `        if (isServer) {
            socket = new TLSSocket(duplex, {
                ...opts,
`;
const PATCHED = `        if (isServer) {
            ${MARK}: Bun refuses ALPNProtocols together with ALPNCallback on a server socket
            const { ALPNProtocols: _clientOnly, ...serverOpts } = opts;
            socket = new TLSSocket(duplex, {
                ...serverOpts,
`;

function fail(why) {
  console.error(`shoal postinstall: cannot patch ${file}: ${why}`);
  console.error('The Bun TLS ALPN work-around (docs/net.md) must be re-checked against this @libp2p/tls version and');
  console.error('scripts/patch-libp2p-tls.mjs updated; installing without it would leave nodes that crash on the first inbound connection.');
  process.exit(1);
}

if (!existsSync(file)) fail('the file is missing (is @libp2p/tls installed?)');
const version = JSON.parse(readFileSync(pkgFile, 'utf8')).version;
const text = readFileSync(file, 'utf8');
const originals = text.split(ORIGINAL).length - 1;
if (text.includes(MARK)) {
  if (originals !== 0 || !text.includes(PATCHED)) fail(`@libp2p/tls ${version} is only partly patched`);
  console.log(`shoal postinstall: @libp2p/tls ${version} already patched`);
} else {
  if (originals !== 1) fail(`@libp2p/tls ${version} does not contain the expected server-socket code exactly once (found ${originals})`);
  writeFileSync(file, text.replace(ORIGINAL, PATCHED));
  console.log(`shoal postinstall: patched @libp2p/tls ${version} for Bun (server-side ALPN)`);
}
