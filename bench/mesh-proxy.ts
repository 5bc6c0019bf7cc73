/**
 * The mesh's ingress proxy alone in its own process, for bench/mesh.ts: one published TCP port on
 * loopback relaying to the backend ports given. Prints `ready <port>` once listening.
 *
 *   bun bench/mesh-proxy.ts <backend-port>[,<backend-port>...]
 */
import { IngressProxy } from '../src/mesh/ingress.ts';

const backends = (process.argv[2] ?? '').split(',').filter(Boolean).map(Number);
if (backends.length === 0 || backends.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
  console.error('usage: bun bench/mesh-proxy.ts <backend-port>[,<backend-port>...]');
  process.exit(2);
}
const proxy = new IngressProxy({ bindAddress: '127.0.0.1' });
const port = await proxy.publish(0);
proxy.setBackends(port, backends.map((p) => ({ addr: '127.0.0.1', port: p, local: true, healthy: true })));
console.log(`ready ${port}`);
process.on('SIGTERM', () => {
  proxy.close();
  process.exit(0);
});
