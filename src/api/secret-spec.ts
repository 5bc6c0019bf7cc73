/**
 * Request bodies of `/secrets` and `/configs` (Docker's SecretSpec/ConfigSpec), and lookups by
 * reference. Everything a user can get wrong is a 400 naming the field.
 */
import { z } from 'zod';
import { InvalidArgumentError, NotFoundError } from '../lib/errors.ts';
import type { MemoryStore } from '../store/index.ts';
import { type Config, type FileKind, MAX_SECRET_BYTES, MAX_SECRET_NAME, type Secret, SECRET_NAME, type SecretSpec } from '../types/index.ts';
import { validate } from './schemas.ts';

const labels = z.record(z.string().max(1024), z.string().max(64 * 1024));
const driver = z.looseObject({ Name: z.string().max(256), Options: z.record(z.string(), z.string()).nullable().optional() });

const specSchema = z.strictObject({
  Name: z.string({ error: 'expected a name' }),
  Labels: labels.nullable().optional(),
  // Room for base64 of the largest allowed content, so the size check below can say it in bytes.
  Data: z.string().max(4 * MAX_SECRET_BYTES).nullable().optional(),
  Driver: driver.nullable().optional(),
  Templating: driver.nullable().optional(),
});

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export const TABLE_OF: Record<FileKind, 'secrets' | 'configs'> = { secret: 'secrets', config: 'configs' };

export function checkName(kind: FileKind, name: string, field = 'Name'): void {
  if (!name) throw new InvalidArgumentError(`${field}: a ${kind} needs a name`);
  if (name.length > MAX_SECRET_NAME) throw new InvalidArgumentError(`${field}: ${kind} name "${name.slice(0, 80)}…" is longer than ${MAX_SECRET_NAME} characters`);
  if (!SECRET_NAME.test(name)) {
    throw new InvalidArgumentError(`${field}: invalid ${kind} name "${name}": use letters, digits, "-", "_" and ".", starting and ending with a letter or digit`);
  }
}

/** The decoded content of a base64 `Data`, or a 400 saying what is wrong with it. */
export function decodeData(kind: FileKind, data: string | null | undefined): Uint8Array {
  const text = (data ?? '').replace(/\s+/g, '');
  if (!BASE64.test(text)) throw new InvalidArgumentError(`Data: expected the ${kind}'s content in base64`);
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length === 0) throw new InvalidArgumentError(`Data: a ${kind} cannot be empty`);
  if (bytes.length > MAX_SECRET_BYTES) {
    throw new InvalidArgumentError(`Data: ${kind} data is ${bytes.length} bytes; the limit is ${MAX_SECRET_BYTES} bytes (500 KiB)`);
  }
  return bytes;
}

/** A create request as the store keeps it (Data re-encoded canonically). */
export function normalizeSpec(kind: FileKind, body: unknown): SecretSpec {
  const input = validate(specSchema, body);
  checkName(kind, input.Name);
  if (input.Driver?.Name) throw new InvalidArgumentError(`Driver: external ${kind} drivers are not supported ("${input.Driver.Name}"); give Data instead`);
  if (input.Templating?.Name && input.Templating.Name !== 'none') {
    throw new InvalidArgumentError(`Templating: ${kind} templating is not supported ("${input.Templating.Name}")`);
  }
  const data = decodeData(kind, input.Data);
  return { Name: input.Name, Labels: input.Labels ?? {}, Data: Buffer.from(data).toString('base64') };
}

/** What an update may change: labels only, as Docker. The body's other fields must match. */
export function labelsUpdate(kind: FileKind, cur: SecretSpec, body: unknown): SecretSpec {
  const input = validate(specSchema.partial(), body);
  if (input.Name !== undefined && input.Name !== cur.Name) throw new InvalidArgumentError(`Name: only updates to Labels are allowed (renaming ${kind} ${cur.Name} is not)`);
  if (input.Data) {
    const same = Buffer.from(input.Data.replace(/\s+/g, ''), 'base64').equals(Buffer.from(cur.Data ?? '', 'base64'));
    if (!same) throw new InvalidArgumentError(`Data: only updates to Labels are allowed; to change a ${kind}'s content create a new ${kind} and update the services to it`);
  }
  if (input.Driver?.Name || (input.Templating?.Name && input.Templating.Name !== 'none')) throw new InvalidArgumentError('only updates to Labels are allowed');
  return { ...cur, Labels: input.Labels ?? {} };
}

/** By full ID, then name, then unique ID prefix (Docker's order). */
export function findFileObject(store: MemoryStore, kind: FileKind, ref: string): Secret | Config {
  const table = TABLE_OF[kind];
  let o = store.get(table, ref) ?? store.by(table, 'name', ref)[0];
  if (!o && ref) {
    const hits = store.list(table).filter((x) => x.ID.startsWith(ref));
    if (hits.length > 1) throw new InvalidArgumentError(`${kind} "${ref}" is ambiguous: ${hits.length} IDs start with it`);
    o = hits[0];
  }
  if (!o) throw new NotFoundError(`${kind} ${ref} not found`);
  return o;
}
