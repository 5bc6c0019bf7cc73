import { Packr } from 'msgpackr/pack';

/**
 * The one msgpack codec of the project. Plain maps and arrays only (no msgpackr records), so that
 * every frame is readable by any msgpack implementation and nothing depends on shared structures.
 *
 * Imported from `msgpackr/pack` (under Bun and Node the whole library, without its native string
 * extractor), never `msgpackr`: the extractor decodes all strings of an entry as slices of one string,
 * so one short string kept (a task's id in the store) keeps every string of its entry alive. At
 * 100 000 tasks the store held ~200 MiB more with it, and decoded no faster (codec.test.ts guards this).
 */
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function decode<T = unknown>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}
