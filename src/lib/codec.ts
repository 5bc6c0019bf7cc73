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

/**
 * The store's own log entries: msgpackr records, where each object shape's keys are written once per
 * entry and later objects of that shape are their values only. Read by `decode` (each entry carries
 * its shapes, nothing is shared between entries). A batch of 1 000 tasks encodes to about half the
 * bytes and packs and unpacks in about half the time, at ~45 % of the manager's CPU in msgpack
 * (issue #18). Not for frames: another msgpack implementation would read records as integers.
 */
const entryPackr = new Packr({ useRecords: true, moreTypes: false, mapsAsObjects: true });

export function encodeEntry(value: unknown): Uint8Array {
  return entryPackr.pack(value);
}

export function decode<T = unknown>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}
