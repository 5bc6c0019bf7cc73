/**
 * The floor for bench/mesh.ts: the plainest TCP relay Bun can do (no table, no retry, no bounds, no
 * backpressure), the "plain Bun TCP relay" that issue 6 quotes at about 0.95× nginx. Not for use: it
 * shows what the mesh's own logic costs on top of Bun.
 *
 *   bun bench/bare-relay.ts <backend-port>     → prints `ready <port>`
 */
import type { Socket } from 'bun';

interface Pair {
  upstream: Socket<Socket<Pair>> | null;
  early: Uint8Array[];
}

const backendPort = Number(process.argv[2]);
const listener = Bun.listen<Pair>({
  hostname: '127.0.0.1',
  port: 0,
  data: undefined as unknown as Pair,
  socket: {
    open(client) {
      client.data = { upstream: null, early: [] };
      Bun.connect<Socket<Pair>>({
        hostname: '127.0.0.1',
        port: backendPort,
        data: client,
              socket: {
          open(u) {
            client.data.upstream = u;
            for (const b of client.data.early) u.write(b);
          },
          data(u, d) {
            u.data.write(d);
          },
          close(u) {
            u.data.end();
          },
        },
      }).catch(() => client.end());
    },
    data(client, d) {
      if (client.data.upstream) client.data.upstream.write(d);
      else client.data.early.push(Uint8Array.prototype.slice.call(d));
    },
    close(client) {
      client.data.upstream?.end();
    },
  },
});
console.log(`ready ${listener.port}`);
process.on('SIGTERM', () => process.exit(0));
