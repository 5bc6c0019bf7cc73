import type { ConfChange } from './types.ts';

// Conf change entries carry this tiny binary form in Entry.data: a version byte, a type byte, then
// length-prefixed (u32 big-endian) node id (UTF-8) and context. Decoding checks every length.

const VERSION = 1;
const TYPES: ConfChange['type'][] = ['addVoter', 'addLearner', 'removeNode'];
const MAX_FIELD_BYTES = 1 << 20;

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const code = TYPES.indexOf(cc.type);
  if (code < 0) throw new Error(`unknown conf change type ${String(cc.type)}`);
  const node = new TextEncoder().encode(cc.node);
  const context = cc.context ?? new Uint8Array(0);
  const out = new Uint8Array(2 + 4 + node.length + 4 + context.length);
  const view = new DataView(out.buffer);
  out[0] = VERSION;
  out[1] = code;
  view.setUint32(2, node.length);
  out.set(node, 6);
  view.setUint32(6 + node.length, context.length);
  out.set(context, 10 + node.length);
  return out;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.length < 10 || data[0] !== VERSION) throw new Error('conf change: bad header');
  const type = TYPES[data[1]];
  if (type === undefined) throw new Error(`conf change: unknown type code ${data[1]}`);
  const nodeLen = view.getUint32(2);
  if (nodeLen > MAX_FIELD_BYTES || 10 + nodeLen > data.length) throw new Error('conf change: bad node length');
  const node = new TextDecoder().decode(data.subarray(6, 6 + nodeLen));
  const ctxLen = view.getUint32(6 + nodeLen);
  if (10 + nodeLen + ctxLen !== data.length) throw new Error('conf change: bad context length');
  const cc: ConfChange = { type, node };
  if (ctxLen > 0) cc.context = data.slice(10 + nodeLen);
  return cc;
}
