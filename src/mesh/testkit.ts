/**
 * Helpers for the mesh tests: small servers on loopback and a client that collects a reply. Every wait
 * is bounded by a count of event-loop turns or a deadline, and says what it waited for.
 */
import type { Socket, TCPSocketListener, udp } from 'bun';

export async function waitFor(cond: () => boolean, what: string, limitMs = 5000): Promise<void> {
  const deadline = performance.now() + limitMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await Bun.sleep(2);
  }
}

export interface TestBackend {
  name: string;
  port: number;
  /** Connections this backend has accepted. */
  accepted: number;
  open: number;
  stop(): void;
}

/**
 * A TCP backend that greets each connection with `<name>\n` and then echoes what it reads, prefixed by
 * nothing. `hold` keeps connections open after the greeting (the client closes).
 */
export function greetingBackend(name: string, host = '127.0.0.1'): TestBackend {
  const b: TestBackend = { name, port: 0, accepted: 0, open: 0, stop: () => listener.stop(true) };
  const listener: TCPSocketListener<undefined> = Bun.listen({
    hostname: host,
    port: 0,
    allowHalfOpen: true,
    socket: {
      open(s) {
        b.accepted++;
        b.open++;
        s.write(`${name}\n`);
      },
      data(s, d) {
        s.write(d);
      },
      end(s) {
        s.end();
      },
      close() {
        b.open--;
      },
    },
  });
  b.port = listener.port;
  return b;
}

/** A port on loopback that refuses connections: bound once, then closed. */
export function refusedPort(host = '127.0.0.1'): number {
  const l = Bun.listen({ hostname: host, port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

/**
 * A port whose connects hang: a listener that never accepts, its queue filled, so the kernel drops
 * further SYNs (python3, as Bun cannot set a listen backlog). `stop` kills it.
 */
export async function silentBackend(host = '127.0.0.1'): Promise<{ port: number; stop(): void }> {
  const p = Bun.spawn(['python3', '-c', `
import socket, time
s = socket.socket(); s.bind((${JSON.stringify(host)}, 0)); s.listen(0)
fill = []
for _ in range(4):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(s.getsockname())
    except BlockingIOError: pass
    fill.append(c)
print(s.getsockname()[1], flush=True)
time.sleep(120)
`], { stdout: 'pipe', stderr: 'inherit' });
  const first = await p.stdout.getReader().read();
  const port = Number(new TextDecoder().decode(first.value).trim());
  if (!(port > 0)) {
    p.kill();
    throw new Error('the silent backend did not start (python3 needed)');
  }
  return { port, stop: () => p.kill() };
}

export interface TestClient {
  socket: Socket<undefined>;
  received(): string;
  bytes(): number;
  closed(): boolean;
}

export async function connectClient(port: number, host = '127.0.0.1'): Promise<TestClient> {
  const chunks: Buffer[] = [];
  let size = 0;
  let closed = false;
  const socket = await Bun.connect({
    hostname: host,
    port,
    allowHalfOpen: true,
    socket: {
      data(_s, d) {
        chunks.push(Buffer.from(d));
        size += d.byteLength;
      },
      end(s) {
        s.end();
      },
      close() {
        closed = true;
      },
    },
  });
  return { socket, received: () => Buffer.concat(chunks).toString(), bytes: () => size, closed: () => closed };
}

/** Connects, waits for the greeting line, closes, and returns the backend's name. */
export async function whoAnswers(port: number, host = '127.0.0.1'): Promise<string> {
  const c = await connectClient(port, host);
  await waitFor(() => c.received().includes('\n') || c.closed(), `a greeting through port ${port}`);
  c.socket.end();
  return c.received().split('\n')[0]!;
}

/** A UDP backend that answers every datagram with `<name>:<datagram>`. */
export async function udpEchoBackend(name: string, host = '127.0.0.1'): Promise<{ port: number; socket: udp.Socket<'buffer'> }> {
  const socket = await Bun.udpSocket({
    hostname: host,
    port: 0,
    socket: {
      data(s, d, port, addr) {
        s.send(`${name}:${d.toString()}`, port, addr);
      },
    },
  });
  return { port: socket.port, socket };
}

/** A UDP client that keeps every reply it gets. */
export async function udpClient(host = '127.0.0.1'): Promise<{ socket: udp.Socket<'buffer'>; replies: string[] }> {
  const replies: string[] = [];
  const socket = await Bun.udpSocket({ hostname: host, port: 0, socket: { data: (_s, d) => void replies.push(d.toString()) } });
  return { socket, replies };
}
