/**
 * A node that a rolling upgrade is working on (docs/upgrade.md) restarts on purpose and keeps its
 * tasks: it gets a longer grace before it is marked down (and its tasks run elsewhere), so that a
 * slow restart on a loaded host does not turn a drain-free upgrade into a reschedule.
 */
import type { MemoryStore } from '../../store/index.ts';

/** Bound on a node's restart during an upgrade; the upgrade itself fails the node after a similar time. */
export const UPGRADE_DOWN_GRACE_MS = 120_000;

/** The grace for `nodeId` while an upgrade is under way and has not finished with it; else null. */
export function upgradeGraceMs(store: MemoryStore, nodeId: string): number | null {
  const u = store.list('clusters')[0]?.Upgrade;
  if (u?.Phase !== 'running') return null;
  const n = u.Nodes.find((x) => x.NodeID === nodeId);
  return n && (n.State === 'pending' || n.State === 'staged' || n.State === 'probed' || n.State === 'restarting') ? UPGRADE_DOWN_GRACE_MS : null;
}
