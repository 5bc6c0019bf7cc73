/**
 * The mesh's ingress proxy alone in its own process, for bench/mesh.ts and bench/vip.ts: one
 * published TCP port relaying to the backends given. Prints `ready <port> (<data path> relay)` once
 * listening. SHOAL_MESH_RELAY=js runs it on the all-JavaScript relay.
 *
 *   bun bench/mesh-proxy.ts <backend>[,<backend>...] [<bind address> [<port>]]
 *
 * A backend is `<port>` (on 127.0.0.1) or `<addr>:<port>`. Default bind 127.0.0.1, any free port.
 */
import { IngressProxy } from '../src/mesh/ingress.ts';

const backends = (process.argv[2] ?? '').split(',').filter(Boolean).map((b) => {
  const i = b.lastIndexOf(':');
  return i < 0 ? { addr: '127.0.0.1', port: Number(b) } : { addr: b.slice(0, i), port: Number(b.slice(i + 1)) };
});
const bind = process.argv[3] ?? '127.0.0.1';
const want = Number(process.argv[4] ?? 0);
if (backends.length === 0 || backends.some((b) => !Number.isInteger(b.port) || b.port < 1 || b.port > 65535) || !Number.isInteger(want)) {
  console.error('usage: bun bench/mesh-proxy.ts <[addr:]port>[,<[addr:]port>...] [<bind address> [<port>]]');
  process.exit(2);
}
const proxy = new IngressProxy({ bindAddress: bind });
const port = await proxy.publish(want);
proxy.setBackends(port, backends.map((b) => ({ ...b, local: true, healthy: true })));
console.log(`ready ${port} (${proxy.stats().tcpRelayLabel})`);
process.on('SIGTERM', () => {
  proxy.close();
  process.exit(0);
});
