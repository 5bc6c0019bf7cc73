#!/usr/bin/env node
/**
 * Run by npm as `postinstall`. Patches three packages in place: two of libp2p (docs/net.md, "The
 * libp2p patches") and msgpackr (docs/scale.md, stop 32):
 *
 * 1. bun-alpn (@libp2p/tls, tls.js): Bun's TLSSocket throws ERR_TLS_ALPN_CALLBACK_WITH_PROTOCOLS
 *    when the server side is given both `ALPNProtocols` and `ALPNCallback` (Node accepts both), so
 *    the first inbound TLS connection would crash a listening node. The server only needs the
 *    callback; the client keeps `ALPNProtocols`.
 * 2. reuse-cert (@libp2p/tls, tls.js): the library made a new ECDSA key and self-signed X.509
 *    certificate (in JavaScript ASN.1) for every connection, and parsed and verified every peer
 *    certificate afresh: most of a manager's CPU while a thousand nodes reconnect (docs/scale.md).
 *    The libp2p TLS spec lets an endpoint reuse its key and certificate across connections. The
 *    patch keeps one per identity key for an hour, and remembers a peer certificate that verified, by
 *    its exact bytes, for ten minutes (the binding it checks, libp2p key ↔ certificate key, is a
 *    property of those bytes; the TLS handshake still proves possession of the certificate's key on
 *    every connection).
 * 3. one-record (@libp2p/tls, utils.js): a muxer frame's parts were written one `TLSSocket.write`
 *    each: two TLS records and two socket writes per yamux frame. The patch writes them as one.
 * 4. flat-connections (libp2p, connection-manager/index.js): `getConnections()` built its list with
 *    `concat` in a loop, O(N²) at N connections, and it runs for every inbound connection and every
 *    pruning check: 8.5% of a manager's CPU while 1,000 nodes joined. The patch pushes instead.
 * 5. native-strings (msgpackr, unpack.js): a string of 16 to 64 bytes was decoded in JavaScript, a
 *    byte at a time into an array and then `String.fromCharCode.apply`; shorter ones have their own
 *    fast path and longer ones went to `TextDecoder`. Ids, timestamps and status messages are that
 *    long: 28% of a follower's CPU while it applied a burst's tasks. The patch sends them to
 *    `TextDecoder` too, which decodes the same bytes to the same string (invalid UTF-8 becomes
 *    U+FFFD in both), with a decoder that keeps a leading U+FEFF: msgpackr's own dropped it from
 *    strings over 64 bytes, so a follower decoded such a string without it and its store differed
 *    from the leader's. It does not bring back the native extractor (src/lib/codec.ts).
 *
 * Idempotent: a patched file is left alone. If a file matches neither the original nor the patched
 * text (a new version), this fails the install loudly rather than ship a node that a stranger can
 * crash: re-check the patches against the new version and update them here.
 * Plain JavaScript, no dependencies: npm runs it with whatever Node it has.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const TLS = join(root, 'node_modules', '@libp2p', 'tls');
const LIBP2P = join(root, 'node_modules', 'libp2p');
const MSGPACKR = join(root, 'node_modules', 'msgpackr');

const ALPN = '// shoal-patch: bun-alpn';
const REUSE = '// shoal-patch: reuse-cert';
const RECORD = '// shoal-patch: one-record';
const FLAT = '// shoal-patch: flat-connections';
const STRINGS = '// shoal-patch: native-strings';

/** Each patch: its package and file, its mark, and pairs of [original, patched] text, each original found exactly once. */
const PATCHES = [
  {
    pkg: TLS,
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
    pkg: TLS,
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
    pkg: TLS,
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
  {
    pkg: LIBP2P,
    file: 'dist/src/connection-manager/index.js',
    mark: FLAT,
    edits: [[
      `        let conns = [];
        for (const c of this.connections.values()) {
            conns = conns.concat(c);
        }
        return conns;
`,
      `        ${FLAT}: concat in a loop copied the list once per peer (O(N²) at N connections)
        const conns = [];
        for (const c of this.connections.values()) {
            for (const conn of c) {
                conns.push(conn);
            }
        }
        return conns;
`,
    ]],
  },
  {
    pkg: MSGPACKR,
    file: 'unpack.js',
    mark: STRINGS,
    edits: [
      [
        `function readStringJS(length) {
`,
        `${STRINGS}: a decoder that keeps a leading U+FEFF (the default one drops it: a string that began with one came back without it)
const shoalDecoder = typeof TextDecoder === 'undefined' ? null : new TextDecoder('utf-8', { ignoreBOM: true });
function readStringJS(length) {
`,
      ],
      [
        `	if (length > 64 && decoder)
		return decoder.decode(src.subarray(position, position += length));
`,
        `	if (length > 15 && shoalDecoder) ${STRINGS}: from 16 bytes (ids, timestamps), not 65: the loop below cost 2-3 times as much
		return shoalDecoder.decode(src.subarray(position, position += length));
`,
      ],
    ],
  },
];

function fail(file, why) {
  console.error(`shoal postinstall: cannot patch ${file}: ${why}`);
  console.error('The patches (docs/net.md, docs/scale.md) must be re-checked against this version and scripts/patch-deps.mjs');
  console.error('updated; installing without them would leave nodes that crash on the first inbound connection (bun-alpn).');
  process.exit(1);
}

const count = (text, part) => text.split(part).length - 1;
const versionOf = (pkg) => {
  const pkgFile = join(pkg, 'package.json');
  if (!existsSync(pkgFile)) fail(pkg, 'the package is missing (is it installed?)');
  return JSON.parse(readFileSync(pkgFile, 'utf8')).version;
};

const texts = new Map();
const applied = [];
for (const { pkg, file, mark, edits } of PATCHES) {
  const path = join(pkg, file);
  const what = `${pkg.split('node_modules/')[1]} ${versionOf(pkg)}`;
  if (!texts.has(path)) {
    if (!existsSync(path)) fail(path, 'the file is missing');
    texts.set(path, readFileSync(path, 'utf8'));
  }
  let text = texts.get(path);
  if (text.includes(mark)) {
    if (edits.some(([original, patched]) => count(text, patched) !== 1 || (!patched.includes(original) && count(text, original) !== 0))) fail(path, `${what} is only partly patched (${mark})`);
    continue;
  }
  for (const [original] of edits) {
    const n = count(text, original);
    if (n !== 1) fail(path, `${what} does not contain the expected code exactly once for ${mark} (found ${n}): ${original.trim().split('\n')[0]}`);
  }
  for (const [original, patched] of edits) text = text.replace(original, patched);
  texts.set(path, text);
  applied.push({ path, name: `${mark.replace('// shoal-patch: ', '')} (${what})` });
}
if (applied.length === 0) {
  console.log('shoal postinstall: libp2p and msgpackr already patched');
} else {
  for (const path of new Set(applied.map((a) => a.path))) writeFileSync(path, texts.get(path));
  console.log(`shoal postinstall: patched ${applied.map((a) => a.name).join(', ')}`);
}
