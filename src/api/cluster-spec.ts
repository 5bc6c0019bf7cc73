/**
 * Checks of the cluster spec that `POST /swarm/init` and `POST /swarm/update` take, and the merge
 * of an update into the current spec. Fields shoal models are checked (a 400 names the field);
 * fields of Docker's ClusterSpec that shoal does not model are accepted and ignored, as the docker
 * CLI sends the whole spec. An update keeps every field it leaves out (as node updates do).
 */
import { InvalidArgumentError } from '../lib/errors.ts';
import { nodeCertExpiryProblem } from '../manager/ca/expiry.ts';
import { DEFAULT_ELECTION_TICKS, DEFAULT_HEARTBEAT_TICKS, raftTicksProblem } from '../raft-host/host-options.ts';
import type { ClusterSpec, ExternalCA, ManagersSpec } from '../types/index.ts';

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

/** What `Spec.CAConfig` asks for, checked (Docker's fields). */
export interface CAConfigRequest {
  NodeCertExpiry?: number;
  /** A value other than the last acted on rotates the root CA (`docker swarm ca --rotate`). */
  ForceRotate?: number;
  /** Rotate to this root (PEM), with its key unless an external CA signs for it. */
  SigningCACert?: string;
  SigningCAKey?: string;
  ExternalCAs?: ExternalCA[];
}

const PEM_MAX = 16 * 1024;

/**
 * `Spec.CAConfig` (Docker's): `NodeCertExpiry`, the rotation fields and `ExternalCAs` (cfssl);
 * a root rotation itself is planned by the daemon (src/daemon/ca-rotation.ts).
 */
export function checkCAConfig(ca: unknown): CAConfigRequest | undefined {
  if (ca === undefined || ca === null) return undefined;
  if (!isObject(ca)) throw bad('CAConfig', 'expected an object');
  const out: CAConfigRequest = {};
  if (ca.ForceRotate !== undefined && ca.ForceRotate !== null) out.ForceRotate = intIn('CAConfig.ForceRotate', ca.ForceRotate, 0, Number.MAX_SAFE_INTEGER);
  for (const k of ['SigningCACert', 'SigningCAKey'] as const) {
    const v = ca[k];
    if (v === undefined || v === null || v === '') continue;
    if (typeof v !== 'string' || v.length > PEM_MAX) throw bad(`CAConfig.${k}`, 'expected PEM text');
    if (k === 'SigningCACert' && !v.includes('-----BEGIN CERTIFICATE-----')) throw bad('CAConfig.SigningCACert', 'expected a PEM certificate ("-----BEGIN CERTIFICATE-----")');
    if (k === 'SigningCAKey' && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(v)) throw bad('CAConfig.SigningCAKey', 'expected a PEM private key');
    out[k] = v;
  }
  if (ca.ExternalCAs !== undefined && ca.ExternalCAs !== null) out.ExternalCAs = checkExternalCAs(ca.ExternalCAs);
  const ns = ca.NodeCertExpiry;
  if (ns === undefined || ns === 0) return out; // Docker's zero value: the default
  const problem = nodeCertExpiryProblem(ns);
  if (problem) throw bad('CAConfig.NodeCertExpiry', problem);
  return { ...out, NodeCertExpiry: ns as number };
}

/** `Spec.CAConfig.ExternalCAs`: cfssl only, an http(s) URL, an optional PEM root it signs for. */
export function checkExternalCAs(v: unknown): ExternalCA[] {
  if (!Array.isArray(v)) throw bad('CAConfig.ExternalCAs', 'expected a list');
  if (v.length > 8) throw bad('CAConfig.ExternalCAs', 'at most 8 external CAs');
  return v.map((e, i) => {
    const f = `CAConfig.ExternalCAs[${i}]`;
    if (!isObject(e)) throw bad(f, 'expected an object');
    const { Protocol, URL: url, CACert, Options } = e;
    if (typeof Protocol !== 'string' || Protocol.toLowerCase() !== 'cfssl') throw bad(`${f}.Protocol`, `"${String(Protocol)}" is not supported; only cfssl is`);
    if (typeof url !== 'string' || !/^https?:\/\/[^\s/]+/.test(url) || url.length > 2048) throw bad(`${f}.URL`, 'expected the http:// or https:// URL of a cfssl server');
    if (CACert !== undefined && CACert !== null && CACert !== '' && (typeof CACert !== 'string' || !CACert.includes('-----BEGIN CERTIFICATE-----') || CACert.length > PEM_MAX)) throw bad(`${f}.CACert`, 'expected a PEM certificate');
    const opts = isObject(Options) ? Object.fromEntries(Object.entries(Options).filter(([, x]) => typeof x === 'string')) as Record<string, string> : undefined;
    return { Protocol: 'cfssl' as const, URL: url, ...(typeof CACert === 'string' && CACert ? { CACert } : {}), ...(opts && Object.keys(opts).length ? { Options: opts } : {}) };
  });
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
  if (spec.Raft !== undefined && spec.Raft !== null) {
    if (!isObject(spec.Raft)) throw bad('Raft', 'expected an object');
    const raft = { ...spec.Raft };
    // 0: Docker's "unset"; the default stays.
    for (const k of ['ElectionTick', 'HeartbeatTick', 'SnapshotInterval']) if (raft[k] === 0 || raft[k] === undefined) delete raft[k];
    if (raft.ElectionTick !== undefined || raft.HeartbeatTick !== undefined) {
      const problem = raftTicksProblem(raft.ElectionTick ?? DEFAULT_ELECTION_TICKS, raft.HeartbeatTick ?? DEFAULT_HEARTBEAT_TICKS, 'Spec.Raft.');
      if (problem) throw new InvalidArgumentError(problem);
    }
    out.Raft = raft as ClusterSpec['Raft'];
  }
  // The signing root of an init is the daemon's to take (it makes the cluster's CA): kept apart.
  if (ca?.SigningCAKey && !ca.SigningCACert) throw bad('CAConfig.SigningCAKey', 'given without CAConfig.SigningCACert');
  const kept = { ...(ca?.NodeCertExpiry !== undefined ? { NodeCertExpiry: ca.NodeCertExpiry } : {}), ...(ca?.ExternalCAs?.length ? { ExternalCAs: ca.ExternalCAs } : {}) };
  if (Object.keys(kept).length === 0) delete out.CAConfig;
  else out.CAConfig = kept as ClusterSpec['CAConfig'];
  return out;
}

function intIn(field: string, v: unknown, min: number, max: number): number {
  if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) throw bad(field, `expected an integer from ${min} to ${max}`);
  return v as number;
}

/**
 * The spec after an update: `patch` is Docker's ClusterSpec, whole or in part. Changeable:
 * `Labels`, `Orchestration.TaskHistoryRetentionLimit`, `Raft.SnapshotInterval`,
 * `Raft.ElectionTick` and `Raft.HeartbeatTick` (ticks of 50 ms, checked together),
 * `Dispatcher.HeartbeatPeriod`, `CAConfig.NodeCertExpiry`, `Managers` (field by field). `Name`
 * may be sent only with its current value.
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
    // 0 or absent: unchanged (Docker's CLI sends the whole spec with zeros for what it leaves alone).
    const election = r.ElectionTick === undefined || r.ElectionTick === 0 ? cur.Raft.ElectionTick : r.ElectionTick;
    const heartbeat = r.HeartbeatTick === undefined || r.HeartbeatTick === 0 ? cur.Raft.HeartbeatTick : r.HeartbeatTick;
    if (election !== cur.Raft.ElectionTick || heartbeat !== cur.Raft.HeartbeatTick) {
      const problem = raftTicksProblem(election, heartbeat, 'Spec.Raft.');
      if (problem) throw new InvalidArgumentError(problem);
      next.Raft = { ...(next.Raft ?? cur.Raft), ElectionTick: election as number, HeartbeatTick: heartbeat as number };
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
  if (ca?.ExternalCAs !== undefined) {
    const { ExternalCAs: _old, ...rest } = next.CAConfig ?? cur.CAConfig ?? {};
    next.CAConfig = { ...rest, ...(ca.ExternalCAs.length ? { ExternalCAs: ca.ExternalCAs } : {}) } as ClusterSpec['CAConfig'];
  }
  const managers = checkManagersSpec(patch.Managers);
  if (managers) {
    const m: ManagersSpec = { ...cur.Managers };
    for (const [k, v] of Object.entries(managers)) if (v !== undefined) (m as Record<string, unknown>)[k] = v;
    next.Managers = m;
  }
  return next;
}
