import type { udp } from 'bun';

/**
 * A UDP send that cannot throw. After an ICMP "port unreachable" from some peer that has gone, the
 * kernel reports ECONNREFUSED on the next send on the socket, whoever it is for, and that send is lost:
 * so the send is tried again, a few times (each failure consumes one pending error). Returns false
 * when it was not sent.
 */
export function sendQuietly(s: udp.Socket<'buffer'>, out: Uint8Array, port: number, addr: string): boolean {
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      return s.send(out, port, addr);
    } catch {}
  }
  return false;
}

/** The same for a connected socket. */
export function sendConnectedQuietly(s: udp.ConnectedSocket<'buffer'>, out: Uint8Array): boolean {
  try {
    return s.send(out);
  } catch {
    return false;
  }
}
