/** Bounds of the cluster object that the daemon (restore, force-new-cluster) applies too, apart from the routes (and their zod schemas). */

/** Removed node ids kept in the cluster object (certificates live 90 days; a fleet removes far fewer). */
export const MAX_REMOVED_NODES = 10_000;
