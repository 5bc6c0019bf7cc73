/**
 * Which roots a node should trust now, as one string every node can compare with its own: the
 * digests of the cluster's root and, during a rotation, of the new root, joined by `>`. A node
 * whose trust differs renews its certificate (getting the new trust with it). No imports: the
 * dispatcher sends it with every heartbeat ack without loading x509.
 */
import type { RootCAState } from '../../types/objects.ts';

export function caEpochOf(root: Pick<RootCAState, 'CACertHash' | 'RootRotation'>): string {
  return root.RootRotation ? `${root.CACertHash}>${root.RootRotation.CACertHash}` : root.CACertHash;
}

/** The PEM bundle nodes are to trust: the cluster's root, then the rotation's new root (the store's own strings). */
export function trustPemOf(root: Pick<RootCAState, 'CACert' | 'RootRotation'>): string {
  return root.RootRotation ? `${root.CACert.trim()}\n${root.RootRotation.CACert.trim()}\n` : root.CACert;
}

/** The same string from a node's trusted roots' digests, current root first. */
export function caEpochOfDigests(digests: readonly string[]): string {
  return digests.join('>');
}
