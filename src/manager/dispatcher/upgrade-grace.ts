/**
 * While a rolling upgrade runs (docs/upgrade.md), nodes restart on purpose and keep their tasks, and
 * each manager's restart moves every worker's session to another leader: every node of the upgrade
 * gets a longer grace before it is marked down (and its tasks run elsewhere), during the upgrade and
 * for a while after it, so that a slow restart or reconnection on a loaded host does not turn a
 * drain-free upgrade into a reschedule. A paused upgrade gets none: something failed.
 */
import type { MemoryStore } from '../../store/index.ts';

/** Bound on a node's restart during an upgrade; the upgrade itself fails a node after a similar time. */
export const UPGRADE_DOWN_GRACE_MS = 120_000;
/** How long after the upgrade finished the grace still holds (the last leader change is recent). */
export const UPGRADE_SETTLE_MS = 60_000;

/** The grace for `nodeId` while an upgrade involves it; else null. */
export function upgradeGraceMs(store: MemoryStore, nodeId: string, now = Date.now()): number | null {
  const u = store.list('clusters')[0]?.Upgrade;
  if (!u || !u.Nodes.some((x) => x.NodeID === nodeId)) return null;
  if (u.Phase === 'running' || u.Phase === 'staging') return UPGRADE_DOWN_GRACE_MS;
  if (u.Phase === 'done' && now - Date.parse(u.UpdatedAt) < UPGRADE_SETTLE_MS) return UPGRADE_DOWN_GRACE_MS;
  return null;
}
