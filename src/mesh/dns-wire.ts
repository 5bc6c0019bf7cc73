/**
 * The few things the DNS server reads or writes on the wire without a full decode: the ID, the end of
 * the question section (to match an upstream reply with its query), and error replies. Every read is
 * bounds-checked: a malformed packet yields -1 or null, never an exception.
 */
import * as dnsPacket from 'dns-packet';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export const HEADER_BYTES = 12;
/** Largest DNS message (TCP framing limit). */
export const MAX_MESSAGE_BYTES = 65535;
/** UDP answers without EDNS must fit here (RFC 1035); larger ones are truncated with TC set. */
export const CLASSIC_UDP_BYTES = 512;

export function readId(msg: Uint8Array): number {
  return msg.byteLength >= 2 ? (msg[0]! << 8) | msg[1]! : -1;
}

export function writeId(msg: Uint8Array, id: number): void {
  msg[0] = (id >> 8) & 0xff;
  msg[1] = id & 0xff;
}

export function isResponse(msg: Uint8Array): boolean {
  return msg.byteLength >= 3 && (msg[2]! & 0x80) !== 0;
}

/**
 * Offset just past the first question (uncompressed name, type, class), or -1 when the packet is too
 * short or the name is malformed. Queries never compress the question name.
 */
export function questionEnd(msg: Uint8Array): number {
  if (msg.byteLength < HEADER_BYTES) return -1;
  let i = HEADER_BYTES;
  for (let labels = 0; labels < 128; labels++) {
    if (i >= msg.byteLength) return -1;
    const len = msg[i]!;
    if (len === 0) return i + 5 <= msg.byteLength ? i + 5 : -1;
    if (len > 63) return -1;
    i += 1 + len;
  }
  return -1;
}

/** Whether `reply` carries the same question bytes as `query` (case included, as upstreams echo it). */
export function sameQuestion(query: Uint8Array, reply: Uint8Array): boolean {
  const end = questionEnd(query);
  if (end < 0 || reply.byteLength < end) return false;
  for (let i = HEADER_BYTES; i < end; i++) if (query[i] !== reply[i]) return false;
  return true;
}

/** Flags of a reply to `queryFlags`: QR, the query's opcode and RD, RA (we recurse through upstreams). */
export function replyFlags(queryFlags: number, rcode: number, authoritative: boolean): number {
  const opcodeAndRd = queryFlags & (0x7800 | dnsPacket.RECURSION_DESIRED);
  return opcodeAndRd | dnsPacket.RECURSION_AVAILABLE | (authoritative ? dnsPacket.AUTHORITATIVE_ANSWER : 0) | rcode;
}

/**
 * An error reply to a raw query that may not even decode: the ID and, when it parses, the question.
 * Null when there is not even a header to answer (the packet is dropped).
 */
export function errorReply(query: Uint8Array, rcode: number): Buffer | null {
  if (query.byteLength < HEADER_BYTES || isResponse(query)) return null;
  const flags = ((query[2]! << 8) | query[3]!) & 0x7fff;
  const end = questionEnd(query);
  const qdcount = (query[4]! << 8) | query[5]!;
  const withQuestion = end > 0 && qdcount === 1;
  const out = Buffer.alloc(withQuestion ? end : HEADER_BYTES);
  out[0] = query[0]!;
  out[1] = query[1]!;
  const f = 0x8000 | replyFlags(flags, rcode, false);
  out[2] = f >> 8;
  out[3] = f & 0xff;
  if (withQuestion) {
    out[5] = 1;
    out.set(query.subarray(HEADER_BYTES, end), HEADER_BYTES);
  }
  return out;
}
