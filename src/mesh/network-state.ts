/**
 * What NetworkAgent keeps per network and per local task, and the state file that remembers the
 * networks set up on this host across daemons. Apart from the agent so that the parts it drives
 * (HostPath, the task VIP rules) name these shapes without importing the agent.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { EmbeddedDns } from './dns.ts';
import type { NetnsRef } from './netlink-cmd.ts';
import type { OverlayNetwork } from './overlay.ts';

/** What the state file keeps of a network set up on this host. */
export interface RememberedNet { id: string; name: string; subnet: string; gateway: string; vni: number; local: string }

export interface NetState {
  id: string;
  name: string;
  subnet: string;
  gateway: string;
  vni: number;
  overlay: OverlayNetwork;
  dns: EmbeddedDns | null;
  /** The host path's last rules written, whether its jumps are known to be in place, and the VIPs last put on the bridge. */
  hostRules?: string;
  hostJumps?: boolean;
  hostAddrs?: string;
}

export interface LocalTask {
  id: string;
  /** network id → address with prefix */
  nets: Map<string, string>;
  /** The namespace the VIP rules go into: ours (processes) or the task's own (a container's pid). */
  ns: NetnsRef | null;
  /** We made the namespace (and delete it on release). */
  ownNs: boolean;
  /** The last VIP rules written into `ns` and whether the OUTPUT jump is known to be there. */
  rules: string | null;
  jump: boolean;
}

/** The networks an earlier daemon remembered in `file`; none when there is no file or it is unreadable. */
export function readRemembered(file: string | undefined): RememberedNet[] {
  if (!file) return [];
  try {
    const list = JSON.parse(readFileSync(file, 'utf8'));
    return Array.isArray(list) ? list.filter((x) => x && typeof x.id === 'string' && typeof x.subnet === 'string' && typeof x.local === 'string') : [];
  } catch {
    return [];
  }
}

/** Replace `file` with `list` at once (a crash leaves the old list or the new one). Throws on I/O errors. */
export function writeRemembered(file: string, list: RememberedNet[]): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(list));
  renameSync(`${file}.tmp`, file);
}
