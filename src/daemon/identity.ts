import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { newId } from '../lib/ids.ts';

/** This host's node id, kept in <data-dir>/node.json so a restart resumes the same node. */
export function loadOrCreateNodeId(dataDir: string): string {
  const file = join(dataDir, 'node.json');
  if (existsSync(file)) {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { NodeID?: unknown };
    if (typeof parsed.NodeID === 'string' && parsed.NodeID) return parsed.NodeID;
    throw new Error(`${file} has no NodeID: fix or remove the file`);
  }
  const id = newId();
  writeFileSync(`${file}.tmp`, JSON.stringify({ NodeID: id }) + '\n', { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
  return id;
}
