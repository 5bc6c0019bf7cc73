/**
 * Checks of the cluster spec that `POST /swarm/init` and `POST /swarm/update` take, and the merge
 * of an update into the current spec. Fields shoal models are checked (a 400 names the field);
 * fields of Docker's ClusterSpec that shoal does not model are accepted and ignored, as the docker
 * CLI sends the whole spec. An update keeps every field it leaves out (as node updates do).
 */
import { InvalidArgumentError } from '../lib/errors.ts';
import { nodeCertExpiryProblem } from '../manager/ca/expiry.ts';
import type { ClusterSpec, ManagersSpec } from '../types/index.ts';

/** `Spec.Managers.Desired`: automatic, off, or an odd number of managers up to this. */
export const MAX_DESIRED_MANAGERS = 7;
const TEN_YEARS_NS = 10 * 365 * 24 * 3600e9;

const bad = (field: string, why: string) => new InvalidArgumentError(`Spec.${field}: ${why}`);

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/** `Spec.Managers` (our addition, src/daemon/manager-count.ts): named fields, sane values. */
export function checkManagersSpec(m: unknown): ManagersSpec | undefined {
  if (m === undefined) return undefined;
  if (!isObject(m)) throw bad('Managers', 'expected an object');
  const { Desired, LostGracePeriod, FailureDomainLabel, ...rest } = m;
  const unknown = Object.keys(rest);
  if (unknown.length) throw bad('Managers', `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}`);
  if (Desired !== undefined) {
    if (!Number.isInteger(Desired) || (Desired as number) < -1) throw bad('Managers.Desired', 'expected 0 (automatic), -1 (off) or a number of managers');
    const n = Desired as number;
    if (n > MAX_DESIRED_MANAGERS) throw bad('Managers.Desired', `${n} managers: at most ${MAX_DESIRED_MANAGERS}`);
    if (n > 0 && n % 2 === 0) throw bad('Managers.Desired', `${n} managers: must be odd (1, 3, 5 or 7), so that a majority survives a lost manager`);
  }
  if (LostGracePeriod !== undefined && (typeof LostGracePeriod !== 'number' || !Number.isFinite(LostGracePeriod) || LostGracePeriod < 0 || LostGracePeriod > TEN_YEARS_NS)) {
    throw bad('Managers.LostGracePeriod', 'expected nanoseconds ≥ 0 (at most ten years)');
  }
  if (FailureDomainLabel !== undefined && (typeof FailureDomainLabel !== 'string' || !FailureDomainLabel || FailureDomainLabel.length > 256)) {
    throw bad('Managers.FailureDomainLabel', 'expected a label key');
  }
  return m as ManagersSpec;
}

/** `Spec.CAConfig` (Docker's): only `NodeCertExpiry` is modelled; ExternalCAs and the rest are ignored. */
export function checkCAConfig(ca: unknown): { NodeCertExpiry?: number } | undefined {
  if (ca === undefined || ca === null) return undefined;
  if (!isObject(ca)) throw bad('CAConfig', 'expected an object');
  // `docker swarm ca --rotate` / `--external-ca` / `--ca-cert`: refused rather than ignored, since
  // the CLI would otherwise wait for a root rotation that never starts.
  if (ca.ForceRotate !== undefined && ca.ForceRotate !== 0) throw bad('CAConfig.ForceRotate', 'rotating the root CA is not supported yet');
  if (typeof ca.SigningCACert === 'string' && ca.SigningCACert !== '') throw bad('CAConfig.SigningCACert', 'replacing the root CA is not supported yet (an external CA is given at "shoal daemon --init --external-ca")');
  if (Array.isArray(ca.ExternalCAs) && ca.ExternalCAs.length > 0) throw bad('CAConfig.ExternalCAs', 'external CA servers are not supported (an external root is given at "shoal daemon --init --external-ca")');
  const ns = ca.NodeCertExpiry;
  if (ns === undefined || ns === 0) return {}; // Docker's zero value: the default
  const problem = nodeCertExpiryProblem(ns);
  if (problem) throw bad('CAConfig.NodeCertExpiry', problem);
  return { NodeCertExpiry: ns as number };
}

/** `Spec.EncryptionConfig` (Docker's): `AutoLockManagers`, a boolean (the unlock key is made by the update, swarm.ts). */
function checkEncryptionConfig(e: unknown): { AutoLockManagers: boolean } | undefined {
  if (e === undefined || e === null) return undefined;
  if (!isObject(e)) throw bad('EncryptionConfig', 'expected an object');
  if (e.AutoLockManagers !== undefined && typeof e.AutoLockManagers !== 'boolean') throw bad('EncryptionConfig.AutoLockManagers', 'expected true or false');
  return e.AutoLockManagers === undefined ? undefined : { AutoLockManagers: e.AutoLockManagers };
}

/** The checks of an init's spec: the parts shoal models. */
export function checkInitSpec(spec: Record<string, unknown> | undefined): Partial<ClusterSpec> | undefined {
  if (!spec) return undefined;
  checkManagersSpec(spec.Managers);
  checkEncryptionConfig(spec.EncryptionConfig);
  const ca = checkCAConfig(spec.CAConfig);
  const out = { ...spec } as Partial<ClusterSpec> & Record<string, unknown>;
  if (ca === undefined || ca.NodeCertExpiry === undefined) delete out.CAConfig;
  else out.CAConfig = { NodeCertExpiry: ca.NodeCertExpiry };
  return out;
}

function intIn(field: string, v: unknown, min: number, max: number): number {
  if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) throw bad(field, `expected an integer from ${min} to ${max}`);
  return v as number;
}

/**
 * The spec after an update: `patch` is Docker's ClusterSpec, whole or in part. Changeable:
 * `Labels`, `Orchestration.TaskHistoryRetentionLimit`, `Raft.SnapshotInterval`,
 * `Dispatcher.HeartbeatPeriod`, `CAConfig.NodeCertExpiry`, `Managers` (field by field). `Name`
 * and the raft timing may be sent only with their current values.
 */
export function mergeClusterSpec(cur: ClusterSpec, patch: unknown): ClusterSpec {
  if (!isObject(patch)) throw new InvalidArgumentError('the body must be a ClusterSpec object');
  const next: ClusterSpec = { ...cur };
  if (patch.Name !== undefined && patch.Name !== '' && patch.Name !== cur.Name) throw bad('Name', `the cluster's name cannot be changed (it is "${cur.Name}")`);
  if (patch.Labels !== undefined && patch.Labels !== null) {
    if (!isObject(patch.Labels) || Object.values(patch.Labels).some((v) => typeof v !== 'string') || Object.keys(patch.Labels).length > 1000) {
      throw bad('Labels', 'expected an object of strings');
    }
    next.Labels = patch.Labels as Record<string, string>;
  }
  if (isObject(patch.Orchestration) && patch.Orchestration.TaskHistoryRetentionLimit !== undefined) {
    next.Orchestration = { ...cur.Orchestration, TaskHistoryRetentionLimit: intIn('Orchestration.TaskHistoryRetentionLimit', patch.Orchestration.TaskHistoryRetentionLimit, -1, 1000) };
  } else if (patch.Orchestration !== undefined && patch.Orchestration !== null && !isObject(patch.Orchestration)) throw bad('Orchestration', 'expected an object');
  if (isObject(patch.Raft)) {
    const r = patch.Raft;
    if (r.SnapshotInterval !== undefined) next.Raft = { ...cur.Raft, SnapshotInterval: intIn('Raft.SnapshotInterval', r.SnapshotInterval, 1, 1e9) };
    for (const k of ['ElectionTick', 'HeartbeatTick'] as const) {
      if (r[k] !== undefined && r[k] !== 0 && r[k] !== cur.Raft[k]) throw bad(`Raft.${k}`, `cannot be changed (it is ${cur.Raft[k]})`);
    }
  } else if (patch.Raft !== undefined && patch.Raft !== null) throw bad('Raft', 'expected an object');
  if (isObject(patch.Dispatcher) && patch.Dispatcher.HeartbeatPeriod !== undefined && patch.Dispatcher.HeartbeatPeriod !== 0) {
    const hb = patch.Dispatcher.HeartbeatPeriod;
    if (typeof hb !== 'number' || !Number.isFinite(hb) || hb < 100e6 || hb > 3600e9) throw bad('Dispatcher.HeartbeatPeriod', 'expected nanoseconds from 100ms to 1h');
    next.Dispatcher = { ...cur.Dispatcher, HeartbeatPeriod: hb };
  } else if (patch.Dispatcher !== undefined && patch.Dispatcher !== null && !isObject(patch.Dispatcher)) throw bad('Dispatcher', 'expected an object');
  const encryption = checkEncryptionConfig(patch.EncryptionConfig);
  if (encryption) next.EncryptionConfig = encryption;
  const ca = checkCAConfig(patch.CAConfig);
  if (ca?.NodeCertExpiry !== undefined) next.CAConfig = { ...cur.CAConfig, NodeCertExpiry: ca.NodeCertExpiry };
  const managers = checkManagersSpec(patch.Managers);
  if (managers) {
    const m: ManagersSpec = { ...cur.Managers };
    for (const [k, v] of Object.entries(managers)) if (v !== undefined) (m as Record<string, unknown>)[k] = v;
    next.Managers = m;
  }
  return next;
}
