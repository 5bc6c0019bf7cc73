/**
 * `/shoal/upgrade/1`: a manager hands a node a new shoal executable and has it swapped in. Three
 * conversations, each on its own stream:
 *
 *   stage     → go | ok(have)      chunk… end → ok | refuse     (the node verifies and probes it;
 *                                  it acknowledges what it has written as it goes: `ack`)
 *   activate  → ok | refuse        (swapped in; the node restarts on it right after answering)
 *   rollback  → ok | refuse        (the previous executable back; restarts likewise)
 *
 * Only managers open it (PROTOCOLS.upgrade); every node serves it. Chunks are bounded frames, and
 * the sender keeps at most WINDOW_BYTES unacknowledged: a 100 MB executable never sits whole in a
 * send buffer, and the sender's event loop (its heartbeats, its raft) keeps turning.
 */
import type { Multiaddr } from '@multiformats/multiaddr';
import type { PeerId, Stream } from '@libp2p/interface';
import { ShoalError, errorMessage } from '../lib/errors.ts';
import { encodeFrame, type FrameSchema, is, isPlainObject, type Message } from '../lib/frames.ts';
import { FrameChannel } from '../manager/dispatcher/conn.ts';
import type { AuthGuard } from './auth.ts';
import { PROTOCOLS } from './protocols.ts';
import { StreamConn } from './stream-conn.ts';

export class UpgradeRefusedError extends ShoalError {
  override readonly status = 409;
}

/** The node answered and said no (as opposed to a node that could not be reached): retrying will not help. */
export class UpgradeDeclinedError extends UpgradeRefusedError {}

export const UPGRADE_CHUNK_BYTES = 256 * 1024;
/** The receiver acknowledges every ACK_BYTES; the sender waits while WINDOW_BYTES are unacknowledged. */
const ACK_BYTES = 1024 * 1024;
const WINDOW_BYTES = 4 * 1024 * 1024;
/** How long a receiver may leave the sender waiting for room. */
const DRAIN_TIMEOUT_MS = 60_000;

interface UpgradeMessages {
  stage: { version: string; sha256: string; size: number };
  go: Record<string, never>;
  chunk: { data: Uint8Array };
  end: Record<string, never>;
  activate: { version: string; sha256: string };
  rollback: { version: string };
  ack: { bytes: number };
  ok: { have?: boolean };
  refuse: { reason: string };
}

const bytes = (max: number) => (x: unknown) => x instanceof Uint8Array ? (x.length <= max ? null : `longer than ${max}`) : 'not bytes';
const sha = is.string(64);

const SCHEMA: FrameSchema<UpgradeMessages> = {
  stage: { version: 1, maxBytes: 512, check: is.shape({ version: is.string(64), sha256: sha, size: is.number() }) },
  go: { version: 1, maxBytes: 64, check: is.object() },
  chunk: { version: 1, maxBytes: UPGRADE_CHUNK_BYTES + 64, check: is.shape({ data: bytes(UPGRADE_CHUNK_BYTES) }) },
  end: { version: 1, maxBytes: 64, check: is.object() },
  activate: { version: 1, maxBytes: 512, check: is.shape({ version: is.string(64), sha256: sha }) },
  rollback: { version: 1, maxBytes: 256, check: is.shape({ version: is.string(64) }) },
  ack: { version: 1, maxBytes: 64, check: is.shape({ bytes: is.number() }) },
  ok: { version: 1, maxBytes: 64, check: (x) => (isPlainObject(x) ? null : 'not a map') },
  refuse: { version: 1, maxBytes: 4096, check: is.shape({ reason: is.string(2048) }) },
};

/** What a node does with the requests (daemon/upgrade/agent.ts). */
export interface UpgradeReceiver {
  /** Whether this executable is staged here already (verified). */
  has(sha256: string, version: string): Promise<boolean>;
  /** Start receiving; `finish` verifies the digest and probes `--version`, throwing a clear error. */
  receive(meta: { version: string; sha256: string; size: number }): { write(chunk: Uint8Array): Promise<void>; finish(): Promise<unknown>; abort(): void };
  /** Swap the staged executable in; the node restarts on it once the answer has gone out. */
  activate(version: string, sha256: string): Promise<void>;
  /** Swap the previous executable back; the node restarts likewise. */
  rollback(version: string): Promise<void>;
}

/** Messages in arrival order, awaited one at a time with a bound. */
class Inbox<M> {
  #queue: Message<M>[] = [];
  #waiter: { resolve: (m: Message<M>) => void; reject: (e: Error) => void } | null = null;
  #closed: string | null = null;

  constructor(private readonly ch: FrameChannel<M>) {
    ch.onMessage((m) => {
      if (this.#waiter) {
        const w = this.#waiter;
        this.#waiter = null;
        w.resolve(m);
      } else this.#queue.push(m);
    });
    ch.onClose((reason) => {
      this.#closed = reason;
      this.#waiter?.reject(new UpgradeRefusedError(`the stream closed (${reason})`));
      this.#waiter = null;
    });
  }

  next(timeoutMs: number, what: string): Promise<Message<M>> {
    const m = this.#queue.shift();
    if (m) return Promise.resolve(m);
    if (this.#closed !== null) return Promise.reject(new UpgradeRefusedError(`${what}: the stream closed (${this.#closed})`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = null;
        this.ch.close('timed out');
        reject(new UpgradeRefusedError(`${what}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiter = {
        resolve: (x) => {
          clearTimeout(timer);
          resolve(x);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(new UpgradeRefusedError(`${what}: ${e.message}`));
        },
      };
    });
  }
}

/** Serve the protocol on this node. */
export async function serveUpgrade(guard: AuthGuard, receiver: UpgradeReceiver, log: (msg: string) => void, timeoutMs = 60_000): Promise<void> {
  await guard.handle(PROTOCOLS.upgrade, async ({ stream, connection, peer }) => {
    const ch = new FrameChannel(new StreamConn(stream, connection), SCHEMA);
    const inbox = new Inbox(ch);
    let incoming: ReturnType<UpgradeReceiver['receive']> | null = null;
    try {
      const first = await inbox.next(timeoutMs, `upgrade request of manager ${peer.nodeId}`);
      if (first.t === 'stage') {
        if (await receiver.has(first.b.sha256, first.b.version)) {
          ch.send({ t: 'ok', b: { have: true } });
        } else {
          incoming = receiver.receive(first.b);
          ch.send({ t: 'go', b: {} });
          let got = 0;
          let acked = 0;
          for (;;) {
            const m = await inbox.next(timeoutMs, `the executable from manager ${peer.nodeId}`);
            if (m.t === 'chunk') {
              await incoming.write(m.b.data);
              got += m.b.data.length;
              if (got - acked >= ACK_BYTES) {
                acked = got;
                ch.send({ t: 'ack', b: { bytes: got } });
              }
            } else if (m.t === 'end') break;
            else throw new UpgradeRefusedError(`expected a chunk of the executable, got "${m.t}"`);
          }
          const done = incoming;
          incoming = null;
          await done.finish();
          ch.send({ t: 'ok', b: {} });
        }
      } else if (first.t === 'activate') {
        await receiver.activate(first.b.version, first.b.sha256);
        ch.send({ t: 'ok', b: {} });
      } else if (first.t === 'rollback') {
        await receiver.rollback(first.b.version);
        ch.send({ t: 'ok', b: {} });
      } else throw new UpgradeRefusedError(`unexpected "${first.t}" to start an upgrade conversation`);
    } catch (err) {
      incoming?.abort();
      log(`upgrade: refused manager ${peer.nodeId}: ${errorMessage(err)}`);
      ch.send({ t: 'refuse', b: { reason: errorMessage(err).slice(0, 2048) } });
    }
    ch.close('answered');
  });
}

type Target = PeerId | Multiaddr;

async function open(guard: AuthGuard, target: Target, timeoutMs: number) {
  const { stream, connection, peer } = await guard.open(target, PROTOCOLS.upgrade, { signal: AbortSignal.timeout(timeoutMs) });
  const ch = new FrameChannel(new StreamConn(stream, connection), SCHEMA);
  return { stream, ch, inbox: new Inbox(ch), peer };
}

function answer(m: Message<UpgradeMessages>, who: string): { have: boolean } {
  if (m.t === 'refuse') throw new UpgradeDeclinedError(`${who} refused: ${m.b.reason}`);
  if (m.t !== 'ok') throw new UpgradeRefusedError(`${who} answered "${m.t}"`);
  return { have: m.b.have === true };
}

/** Send one frame straight on the stream, waiting while the muxer asks the sender to (its window is full). */
async function send(stream: Stream, msg: Message<UpgradeMessages>): Promise<void> {
  if (stream.status !== 'open') throw new UpgradeRefusedError(`the stream closed while sending the executable (${stream.status})`);
  if (!stream.send(encodeFrame(SCHEMA, msg))) await stream.onDrain({ signal: AbortSignal.timeout(DRAIN_TIMEOUT_MS) });
}

/**
 * Hand `path` (already verified here) to the node at `target`; resolves once it has verified and
 * probed its copy. `have`: it held that executable already.
 */
export async function pushExecutable(guard: AuthGuard, target: Target, exe: { path: string; version: string; sha256: string; size: number }, timeoutMs = 120_000): Promise<{ have: boolean }> {
  const { stream, ch, inbox, peer } = await open(guard, target, timeoutMs);
  const who = `node ${peer.nodeId}`;
  try {
    ch.send({ t: 'stage', b: { version: exe.version, sha256: exe.sha256, size: exe.size } });
    const first = await inbox.next(timeoutMs, who);
    if (first.t !== 'go') return answer(first, who);
    let sent = 0;
    let acked = 0;
    for await (const piece of Bun.file(exe.path).stream()) {
      for (let off = 0; off < piece.length; off += UPGRADE_CHUNK_BYTES) {
        const data = piece.subarray(off, off + UPGRADE_CHUNK_BYTES);
        await send(stream, { t: 'chunk', b: { data } });
        sent += data.length;
        while (sent - acked > WINDOW_BYTES) {
          const m = await inbox.next(timeoutMs, who);
          if (m.t !== 'ack') return answer(m, who);
          acked = m.b.bytes;
        }
      }
    }
    await send(stream, { t: 'end', b: {} });
    for (;;) {
      const m = await inbox.next(timeoutMs, who);
      if (m.t !== 'ack') return answer(m, who);
    }
  } finally {
    ch.close('done');
  }
}

/** Have the node at `target` swap in the executable it staged (it restarts right after answering). */
export async function requestActivate(guard: AuthGuard, target: Target, version: string, sha256: string, timeoutMs = 60_000): Promise<void> {
  const { ch, inbox, peer } = await open(guard, target, timeoutMs);
  try {
    ch.send({ t: 'activate', b: { version, sha256 } });
    answer(await inbox.next(timeoutMs, `node ${peer.nodeId}`), `node ${peer.nodeId}`);
  } finally {
    ch.close('done');
  }
}

/** Have the node at `target` put its previous executable back (it restarts right after answering). */
export async function requestRollback(guard: AuthGuard, target: Target, version: string, timeoutMs = 60_000): Promise<void> {
  const { ch, inbox, peer } = await open(guard, target, timeoutMs);
  try {
    ch.send({ t: 'rollback', b: { version } });
    answer(await inbox.next(timeoutMs, `node ${peer.nodeId}`), `node ${peer.nodeId}`);
  } finally {
    ch.close('done');
  }
}
