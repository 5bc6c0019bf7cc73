import { Packr } from 'msgpackr';

/**
 * The one msgpack codec of the project. Plain maps and arrays only (no msgpackr records), so that
 * every frame is readable by any msgpack implementation and nothing depends on shared structures.
 */
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function decode<T = unknown>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}
