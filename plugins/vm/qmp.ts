/**
 * A minimal QMP (QEMU Machine Protocol) client: connect to the unix socket QEMU listens on, read the
 * greeting, negotiate capabilities, run commands one by one, close. Each call is one short
 * connection, so a fresh controller (after a daemon restart) needs nothing but the socket's path.
 * QEMU serves one QMP client at a time on a socket; calls are short, so that is fine.
 */
import { createConnection, type Socket } from 'node:net';

export class QmpError extends Error {
  override name = 'QmpError';
}

export interface QmpCommand { execute: string; arguments?: Record<string, unknown> }

/** Bound on one QMP reply line: QMP answers here are small; anything larger is not QEMU. */
const MAX_LINE = 1 << 20;

/**
 * Run `commands` in order and return their `return` values. Rejects with QmpError naming the
 * socket on a refused connection, a QMP error reply, or when `timeoutMs` passes.
 */
export function qmp(socketPath: string, commands: QmpCommand[], timeoutMs = 2_000): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const results: unknown[] = [];
    const queue = [{ execute: 'qmp_capabilities' }, ...commands];
    let greeted = false;
    let buf = '';
    let settled = false;
    let sock: Socket;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err); else resolve(results.slice(1));
    };
    const timer = setTimeout(() => finish(new QmpError(`QMP ${socketPath}: no answer within ${timeoutMs} ms`)), timeoutMs);
    const sendNext = () => {
      const c = queue.shift();
      if (!c) return finish();
      sock.write(JSON.stringify(c) + '\n');
    };
    const onMessage = (msg: Record<string, unknown>) => {
      if (!greeted) {
        if (!('QMP' in msg)) return finish(new QmpError(`QMP ${socketPath}: no QMP greeting`));
        greeted = true;
        return sendNext();
      }
      if ('event' in msg) return; // asynchronous events (SHUTDOWN, POWERDOWN…) are not replies
      if ('error' in msg) {
        const e = msg.error as { class?: string; desc?: string };
        return finish(new QmpError(`QMP ${socketPath}: ${e.class ?? 'error'}: ${e.desc ?? JSON.stringify(e)}`));
      }
      if ('return' in msg) { results.push(msg.return); sendNext(); }
    };
    try {
      sock = createConnection({ path: socketPath });
    } catch (err) {
      clearTimeout(timer);
      return reject(new QmpError(`QMP ${socketPath}: ${(err as Error).message}`));
    }
    sock.setEncoding('utf8');
    sock.on('error', (err) => finish(new QmpError(`QMP ${socketPath}: ${err.message}`)));
    sock.on('close', () => finish(new QmpError(`QMP ${socketPath}: connection closed before the replies`)));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_LINE) return finish(new QmpError(`QMP ${socketPath}: reply longer than ${MAX_LINE} bytes`));
      let nl: number;
      while (!settled && (nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        let msg: Record<string, unknown>;
        try { msg = JSON.parse(line); } catch { return finish(new QmpError(`QMP ${socketPath}: not JSON: ${line.slice(0, 80)}`)); }
        onMessage(msg);
      }
    });
  });
}
