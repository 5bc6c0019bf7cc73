/** `Controller.logs` for a container: the engine's log endpoint, demultiplexed, with timestamps. */
import type { Container, ContainerInspectInfo } from 'dockerode';
import type { LogLine, LogOptions } from '../../src/executor/contract.ts';
import { selectLines } from '../../src/executor/logs.ts';
import { isNotFound } from './engine.ts';
import { LogDemuxer } from './logs.ts';

export async function* readLogs(
  container: Container, inspect: () => Promise<ContainerInspectInfo | undefined>, opts: LogOptions,
): AsyncGenerator<LogLine> {
  const info = await inspect().catch(() => undefined);
  if (!info || opts.signal?.aborted) return;
  const follow = !!opts.follow && (info.State.Running || info.State.Status === 'paused');
  // The engine's `since` is in whole seconds: ask from the second before, filter to the ms here.
  const query = {
    stdout: true, stderr: true, timestamps: true,
    ...(opts.since !== undefined ? { since: Math.max(0, Math.floor(opts.since / 1000) - 1) } : {}),
  };
  const keep = (l: LogLine) => opts.since === undefined || l.time >= opts.since;
  if (!follow) {
    if (opts.tail !== undefined && opts.tail <= 0) return;
    // `since` then `tail` is the contract's order; the engine's is the other way, so only a lone tail goes there.
    const tail = opts.since === undefined && opts.tail !== undefined ? { tail: opts.tail } : {};
    let buf: Buffer;
    try {
      buf = await container.logs({ ...query, ...tail, follow: false, ...(opts.signal ? { abortSignal: opts.signal } : {}) } as never) as unknown as Buffer;
    } catch (err) {
      if (isNotFound(err) || opts.signal?.aborted) return;
      throw err;
    }
    const demux = new LogDemuxer();
    const lines = [...demux.push(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)), ...demux.end()];
    yield* selectLines(lines, opts);
    return;
  }
  // Following: the engine applies `tail` to what exists, then streams until the container stops.
  const tail = opts.tail === undefined ? 'all' : Math.max(0, opts.tail);
  let stream: NodeJS.ReadableStream & { destroy(): void };
  try {
    stream = await container.logs({ ...query, tail, follow: true, ...(opts.signal ? { abortSignal: opts.signal } : {}) } as never) as never;
  } catch (err) {
    if (isNotFound(err) || opts.signal?.aborted) return;
    throw err;
  }
  const stop = () => stream.destroy();
  opts.signal?.addEventListener('abort', stop, { once: true });
  const demux = new LogDemuxer();
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      for (const l of demux.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))) if (keep(l)) yield l;
    }
  } catch (err) {
    if (!opts.signal?.aborted) throw err; // a cut stream because we stopped following is the normal end
  } finally {
    opts.signal?.removeEventListener('abort', stop);
    stream.destroy();
  }
  if (opts.signal?.aborted) return;
  for (const l of demux.end()) if (keep(l)) yield l;
}
