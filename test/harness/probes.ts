/**
 * What a test asks of the network between hosts, through the probes of probe.ts run inside a host
 * (or any namespace by name): an echo server, "does A reach B", datagrams, one round trip.
 */
import { resolve } from 'node:path';
import type { NetHost, NetnsHosts } from './hosts.ts';
import { waitFor } from './wait.ts';

const PROBE = resolve(import.meta.dir, 'probe.ts');
const BUN = process.execPath;

/** Read a process's stdout line by line into `lines`. */
function collectLines(stream: ReadableStream<Uint8Array>, lines: string[]): void {
  void (async () => {
    let buf = '';
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      buf += dec.decode(chunk);
      const parts = buf.split('\n');
      buf = parts.pop()!;
      lines.push(...parts);
    }
  })();
}

/** A TCP echo server inside `where` on ip:port, once it listens (killed with the hosts). */
export async function tcpEcho(net: NetnsHosts, where: NetHost | string, ip: string, port: number): Promise<void> {
  const lines: string[] = [];
  collectLines(net.spawn(where, [BUN, PROBE, 'tcp-echo', ip, String(port)]).stdout as ReadableStream<Uint8Array>, lines);
  await waitFor(`tcp echo on ${ip}:${port}`, () => lines.includes('listening'));
}

/** Can `from` open a TCP connection to `to` and get an echo back? "No" means not within the bound. */
export async function reaches(net: NetnsHosts, from: NetHost, to: NetHost, port: number, boundMs = 1000): Promise<boolean> {
  const r = await net.run(from, [BUN, PROBE, 'tcp-ask', to.ip, String(port), String(boundMs)]);
  return r.code === 0;
}

/** One round trip from inside `where`: send `text`, get the first reply (code 0), or code 1 within `boundMs`. */
export function tcpSay(net: NetnsHosts, where: NetHost | string, ip: string, port: number, text: string, boundMs = 3000): Promise<{ code: number; stdout: string; stderr: string }> {
  return net.run(where, [BUN, PROBE, 'tcp-say', ip, String(port), text, String(boundMs)]);
}

/** A UDP listener in `host`; the returned array fills with the datagrams' texts. */
export async function udpListener(net: NetnsHosts, host: NetHost, port: number): Promise<string[]> {
  const lines: string[] = [];
  collectLines(net.spawn(host, [BUN, PROBE, 'udp-listen', host.ip, String(port)]).stdout as ReadableStream<Uint8Array>, lines);
  await waitFor(`udp listener on ${host.ip}:${port}`, () => lines.includes('listening'));
  return lines;
}

export async function udpSend(net: NetnsHosts, from: NetHost, to: NetHost, port: number, ...texts: string[]): Promise<void> {
  const r = await net.run(from, [BUN, PROBE, 'udp-send', to.ip, String(port), ...texts]);
  if (r.code !== 0) throw new Error(`udp-send from host ${from.index}: ${r.stderr}`);
}
