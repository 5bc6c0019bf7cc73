/**
 * yamux window updates sent once half the receive window is used, not after every data frame.
 *
 * @libp2p/yamux (8.x) answers every data frame it reads with a window-update frame, however small
 * the frame: a heartbeat, an assignment, a status batch or an ack each cost a second frame back,
 * with its own TLS record, socket write, and wake-up and read on the other side. On a leader with
 * 1 000 worker sessions these updates were the largest single source of its socket writes while
 * idle (docs/scale.md, "Where the placement steps spend their time"). Other yamux implementations
 * (hashicorp/yamux, which the spec comes from, and rust-yamux) send one when at least half the
 * window has been consumed; this does the same. A stream still opens (SYN), accepts (ACK) and
 * pauses exactly as before: those paths are left to the library.
 *
 * It is a change to the library's prototype, made once for the process. If a later version no
 * longer has the fields it relies on, it leaves the library as it is, and the test beside it fails.
 */
import { StreamState, YamuxStream } from '@libp2p/yamux/stream';

interface WindowFields {
  state: StreamState;
  recvWindow: number;
  recvWindowCapacity: number;
  sendWindowUpdate(): void;
}

let installed = false;

/** Whether the library is as this expects: the prototype's method and a stream's two window fields. */
function fits(proto: Partial<WindowFields>): proto is WindowFields {
  return typeof proto.sendWindowUpdate === 'function';
}

export function windowUpdatesAtHalf(): boolean {
  if (installed) return true;
  const proto = YamuxStream.prototype as unknown as Partial<WindowFields>;
  if (!fits(proto)) return false;
  const update = proto.sendWindowUpdate;
  proto.sendWindowUpdate = function (this: WindowFields) {
    const s = this.state;
    const settled = s !== StreamState.Init && s !== StreamState.SYNReceived && s !== StreamState.Paused;
    // The fields are checked on the instance: a stream without them gets the library's own behaviour.
    if (settled && typeof this.recvWindow === 'number' && typeof this.recvWindowCapacity === 'number' && this.recvWindowCapacity * 2 >= this.recvWindow) return;
    update.call(this);
  };
  installed = true;
  return true;
}

/**
 * Offer the sender on `stream` (a yamux stream this side reads) a receive window of `bytes`.
 *
 * The spec lets a receiver grow its window at any time with a window update, which the sender adds
 * to its credit; a sender of any version honours it, and nothing is assumed of the other side. The
 * raft streams carry appends of up to a few MiB (maxSizePerMsg): with yamux's 256 KiB a 1.2 MB
 * append waited for several window updates, each needing the busy leader's event loop to take the
 * next part, and spent 100-650 ms between two managers on one host (docs/scale.md, stop 30).
 * False when the stream is not a yamux stream as this expects (it is then left as it is).
 */
export function growReceiveWindow(stream: unknown, bytes: number): boolean {
  const s = stream as Partial<WindowFields & { maxStreamWindowSize: number }>;
  if (typeof s.recvWindow !== 'number' || typeof s.recvWindowCapacity !== 'number' || typeof s.sendWindowUpdate !== 'function' || typeof s.maxStreamWindowSize !== 'number') return false;
  if (s.recvWindow >= bytes) return true;
  s.maxStreamWindowSize = Math.max(s.maxStreamWindowSize, bytes);
  s.recvWindow = bytes;
  s.sendWindowUpdate();
  return true;
}
