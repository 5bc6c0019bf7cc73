#!/usr/bin/env node
/**
 * Run by npm as `postinstall`. Patches @libp2p/tls's `dist/src/tls.js` in two places (docs/net.md,
 * "The @libp2p/tls patches"):
 *
 * 1. bun-alpn: Bun's TLSSocket throws ERR_TLS_ALPN_CALLBACK_WITH_PROTOCOLS when the server side is
 *    given both `ALPNProtocols` and `ALPNCallback` (Node accepts both), so the first inbound TLS
 *    connection would crash a listening node. The server only needs the callback; the client keeps
 *    `ALPNProtocols`.
 * 2. reuse-cert: the library made a new ECDSA key and self-signed X.509 certificate (in JavaScript
 *    ASN.1) for every connection, and parsed and verified every peer certificate afresh: most of a
 *    manager's CPU while a thousand nodes reconnect (docs/scale.md). The libp2p TLS spec lets an
 *    endpoint reuse its key and certificate across connections. The patch keeps one per identity key
 *    for an hour, and remembers a peer certificate that verified, by its exact bytes, for ten minutes
 *    (the binding it checks, libp2p key ↔ certificate key, is a property of those bytes; the TLS
 *    handshake still proves possession of the certificate's key on every connection).
 *
 * Idempotent: a patched file is left alone. If the file matches neither the original nor the
 * patched text (a new @libp2p/tls version), this fails the install loudly rather than ship a node
 * that a stranger can crash: re-check the patches against the new version and update them here.
 * Plain JavaScript, no dependencies: npm runs it with whatever Node it has.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'node_modules', '@libp2p', 'tls');
const pkgFile = join(dir, 'package.json');

const ALPN = '// shoal-patch: bun-alpn';
const REUSE = '// shoal-patch: reuse-cert';
const RECORD = '// shoal-patch: one-record';

/** Each patch: the file, its mark, and pairs of [original, patched] text, each original found exactly once. */
const PATCHES = [
  {
    file: 'dist/src/tls.js',
    mark: ALPN,
    edits: [[
      `        if (isServer) {
            socket = new TLSSocket(duplex, {
                ...opts,
`,
      `        if (isServer) {
            ${ALPN}: Bun refuses ALPNProtocols together with ALPNCallback on a server socket
            const { ALPNProtocols: _clientOnly, ...serverOpts } = opts;
            socket = new TLSSocket(duplex, {
                ...serverOpts,
`,
    ]],
  },
  {
    file: 'dist/src/tls.js',
    mark: REUSE,
    edits: [
      [
        `import { generateCertificate, verifyPeerCertificate, toNodeDuplex, toMessageStream } from "./utils.js";
`,
        `import { generateCertificate, verifyPeerCertificate, toNodeDuplex, toMessageStream } from "./utils.js";
${REUSE}: one certificate per identity key, and a verified peer certificate remembered by its bytes
const SHOAL_CERT_REUSE_MS = 60 * 60 * 1000;
const SHOAL_VERIFIED_MS = 10 * 60 * 1000;
const SHOAL_VERIFIED_MAX = 8192;
const shoalCertificates = new WeakMap();
const shoalVerified = new Map();
function shoalCertificate(privateKey, options) {
    options?.signal?.throwIfAborted();
    const now = Date.now();
    let held = shoalCertificates.get(privateKey);
    if (held == null || now - held.at > SHOAL_CERT_REUSE_MS) {
        const made = { at: now, cert: generateCertificate(privateKey) };
        made.cert.catch(() => { if (shoalCertificates.get(privateKey) === made) shoalCertificates.delete(privateKey); });
        shoalCertificates.set(privateKey, made);
        held = made;
    }
    return held.cert;
}
async function shoalVerifyPeerCertificate(raw, expectedPeerId, log) {
    const key = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64');
    const hit = shoalVerified.get(key);
    if (hit != null && Date.now() < hit.until && expectedPeerId?.equals(hit.peer) !== false) return hit.peer;
    const peer = await verifyPeerCertificate(raw, expectedPeerId, log);
    shoalVerified.delete(key);
    if (shoalVerified.size >= SHOAL_VERIFIED_MAX) shoalVerified.delete(shoalVerified.keys().next().value);
    shoalVerified.set(key, { peer, until: Date.now() + SHOAL_VERIFIED_MS });
    return peer;
}
`,
      ],
      [
        `            ...await generateCertificate(this.components.privateKey, options),
`,
        `            ...await shoalCertificate(this.components.privateKey, options),
`,
      ],
      [
        `                verifyPeerCertificate(remote.raw, options?.remotePeer, log)
`,
        `                shoalVerifyPeerCertificate(remote.raw, options?.remotePeer, log)
`,
      ],
    ],
  },
  {
    file: 'dist/src/utils.js',
    mark: RECORD,
    edits: [[
      `    sendData(data) {
        let sentBytes = 0;
        let canSendMore = true;
        for (const buf of data) {
            sentBytes += buf.byteLength;
            canSendMore = this.socket.write(buf);
            if (!canSendMore) {
                break;
            }
        }
        return {
`,
      `    sendData(data) {
        ${RECORD}: a muxer frame (header and body) goes out as one TLS record and one socket write, not one per part
        const sentBytes = data.byteLength;
        const canSendMore = this.socket.write(data.subarray());
        return {
`,
    ]],
  },
];

function fail(file, why) {
  console.error(`shoal postinstall: cannot patch ${file}: ${why}`);
  console.error('The @libp2p/tls patches (docs/net.md) must be re-checked against this @libp2p/tls version and');
  console.error('scripts/patch-libp2p-tls.mjs updated; installing without them would leave nodes that crash on the first inbound connection.');
  process.exit(1);
}

const count = (text, part) => text.split(part).length - 1;

if (!existsSync(pkgFile)) fail(dir, 'the package is missing (is @libp2p/tls installed?)');
const version = JSON.parse(readFileSync(pkgFile, 'utf8')).version;
const texts = new Map();
const applied = [];
for (const { file, mark, edits } of PATCHES) {
  const path = join(dir, file);
  if (!texts.has(path)) {
    if (!existsSync(path)) fail(path, 'the file is missing');
    texts.set(path, readFileSync(path, 'utf8'));
  }
  let text = texts.get(path);
  if (text.includes(mark)) {
    if (edits.some(([original, patched]) => count(text, patched) !== 1 || (!patched.includes(original) && count(text, original) !== 0))) fail(path, `@libp2p/tls ${version} is only partly patched (${mark})`);
    continue;
  }
  for (const [original] of edits) {
    const n = count(text, original);
    if (n !== 1) fail(path, `@libp2p/tls ${version} does not contain the expected code exactly once for ${mark} (found ${n}): ${original.trim().split('\n')[0]}`);
  }
  for (const [original, patched] of edits) text = text.replace(original, patched);
  texts.set(path, text);
  applied.push({ path, name: mark.replace('// shoal-patch: ', '') });
}
if (applied.length === 0) {
  console.log(`shoal postinstall: @libp2p/tls ${version} already patched`);
} else {
  for (const path of new Set(applied.map((a) => a.path))) writeFileSync(path, texts.get(path));
  console.log(`shoal postinstall: patched @libp2p/tls ${version} for Bun (${applied.map((a) => a.name).join(', ')})`);
}
