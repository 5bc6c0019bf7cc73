/**
 * Starting an upgrade or a rollback on the manager the API request came to: the new executable is
 * staged here (checksum, `--version` probe), checked against the version-skew rule, and staged on
 * every other manager (so whichever manager leads later can hand it on), and only then is the
 * record written for the leader to drive. Any failure before the record leaves every node as it was.
 */
import { rmSync } from 'node:fs';
import { ConflictError, errorMessage, InvalidArgumentError, UnavailableError } from '../../lib/errors.ts';
import { newId } from '../../lib/ids.ts';
import type { MemoryStore } from '../../store/index.ts';
import type { Node, UpgradeNode, UpgradeRecord } from '../../types/index.ts';
import { changeUpgrade, currentUpgrade, setPhase } from './record.ts';
import { checkSkew } from './skew.ts';
import { checkSha256, probeVersion, runningExecutable, StagingWriter, UpgradeError } from './executable.ts';

export interface PlanDeps {
  store: MemoryStore;
  dataDir: string;
  selfId: string;
  log: (msg: string) => void;
  /** Stage `path` on manager `node` (verified and probed there). */
  stageOn: (node: Node, exe: { path: string; version: string; sha256: string; size: number }) => Promise<void>;
}

export interface UpgradeRequest {
  /** The executable's bytes (the CLI's upload), or null with `url`. */
  body: ReadableStream<Uint8Array> | null;
  url?: string;
  sha256?: string;
  parallelism?: number;
}

const nodeName = (n: Node) => `node ${n.Description?.Hostname || n.ID.slice(0, 12)} (${n.ID.slice(0, 12)})`;
export const versionOf = (n: Node) => n.Description?.Engine?.EngineVersion ?? '';

function refuseWhileRunning(store: MemoryStore): void {
  const cur = currentUpgrade(store);
  if (cur?.Phase === 'running' || cur?.Phase === 'staging') {
    throw new ConflictError(`an ${cur.Kind} to shoal ${cur.Version} is under way: follow it with "shoal fleet upgrade --status"`);
  }
}

/** The order nodes restart in: workers, then managers, the leader last. */
function ordered(store: MemoryStore, leaderId: string | null): Node[] {
  const nodes = store.list('nodes');
  const byName = (a: Node, b: Node) => (a.Description?.Hostname ?? '').localeCompare(b.Description?.Hostname ?? '') || a.ID.localeCompare(b.ID);
  const workers = nodes.filter((n) => n.Spec.Role !== 'manager').sort(byName);
  const managers = nodes.filter((n) => n.Spec.Role === 'manager').sort((a, b) => Number(a.ID === leaderId) - Number(b.ID === leaderId) || byName(a, b));
  return [...workers, ...managers];
}

async function download(url: string, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
  if (!/^https?:\/\//.test(url)) throw new InvalidArgumentError(`--url "${url}": expected an http:// or https:// address`);
  let res: Response;
  try {
    res = await fetch(url, { signal });
  } catch (err) {
    throw new UnavailableError(`--url ${url}: cannot download it (${errorMessage(err)})`);
  }
  if (!res.ok || !res.body) throw new UnavailableError(`--url ${url}: the server answered ${res.status} ${res.statusText}`);
  return res.body;
}

/** Stage the request's executable here; its path, version, digest and size. */
async function stageHere(deps: PlanDeps, req: UpgradeRequest) {
  const expected = req.sha256 ? checkSha256(req.sha256) : null;
  if (req.url && !expected) throw new InvalidArgumentError('--url needs --sha256: an executable from the network is checked against its digest');
  const body = req.url ? await download(req.url) : req.body;
  if (!body) throw new InvalidArgumentError('no executable: send it as the request body, or give a url');
  // The size and digest are known only at the end: receive into a temporary file, then check.
  const tmp = new StagingWriter(deps.dataDir, { sha256: expected, size: null });
  try {
    for await (const chunk of body) await tmp.write(chunk);
  } catch (err) {
    await tmp.abort();
    throw err instanceof UpgradeError ? err : new UnavailableError(`receiving the executable: ${errorMessage(err)}`);
  }
  const { path, sha256, size } = await tmp.finish();
  let version: string;
  try {
    version = await probeVersion(path);
  } catch (err) {
    rmSync(path, { force: true });
    throw err;
  }
  return { path, sha256, size, version };
}

/** `shoal fleet upgrade --binary|--url`: stage, check, stage on managers, write the record. */
export async function beginUpgrade(deps: PlanDeps, req: UpgradeRequest, leaderId: string | null): Promise<UpgradeRecord> {
  runningExecutable(); // a daemon run from source has nothing to replace: refuse before receiving
  refuseWhileRunning(deps.store);
  const parallelism = req.parallelism ?? 1;
  if (!(Number.isInteger(parallelism) && parallelism >= 1 && parallelism <= 64)) throw new InvalidArgumentError(`--parallelism ${req.parallelism}: expected 1 to 64`);
  const t0 = performance.now();
  const exe = await stageHere(deps, req);
  deps.log(`upgrade: received shoal ${exe.version} (${exe.size} bytes), verified and probed in ${Math.round(performance.now() - t0)} ms`);
  const nodes = ordered(deps.store, leaderId);
  try {
    checkSkew(exe.version, nodes.map((n) => ({ name: nodeName(n), version: versionOf(n) })));
    if (nodes.every((n) => versionOf(n) === exe.version)) throw new InvalidArgumentError(`every node runs shoal ${exe.version} already: nothing to upgrade`);
  } catch (err) {
    rmSync(exe.path, { force: true });
    throw err;
  }
  const at = new Date().toISOString();
  const record: UpgradeRecord = {
    ID: newId(), Kind: 'upgrade', Version: exe.version, Sha256: exe.sha256, Size: exe.size, Phase: 'staging', Parallelism: parallelism,
    Nodes: nodes.map((n): UpgradeNode => ({
      NodeID: n.ID, Hostname: n.Description?.Hostname ?? '', Role: n.Spec.Role === 'manager' ? 'manager' : 'worker', From: versionOf(n),
      State: versionOf(n) === exe.version ? 'skipped' : 'pending', ...(versionOf(n) === exe.version ? { Message: `runs ${exe.version} already` } : {}), UpdatedAt: at,
    })),
    StartedAt: at, UpdatedAt: at,
  };
  // Written before the managers receive it: while 100 MB cross the network a loaded host may miss
  // heartbeats, and the record gives every node the upgrade's grace (dispatcher/upgrade-grace.ts).
  await changeUpgrade(deps.store, (cur) => {
    if (cur?.Phase === 'running' || cur?.Phase === 'staging') throw new ConflictError(`an ${cur.Kind} to shoal ${cur.Version} started meanwhile`);
    return record;
  });
  try {
    for (const m of nodes.filter((n) => n.Spec.Role === 'manager' && n.ID !== deps.selfId)) {
      const t1 = performance.now();
      await deps.stageOn(m, exe).catch((err) => {
        throw new UnavailableError(`staging shoal ${exe.version} on manager ${nodeName(m)}: ${errorMessage(err)}; nothing was replaced`);
      });
      deps.log(`upgrade: staged on manager ${nodeName(m)} in ${Math.round(performance.now() - t1)} ms`);
    }
  } catch (err) {
    await setPhase(deps.store, record.ID, 'paused', errorMessage(err)).catch(() => {});
    throw err;
  }
  await setPhase(deps.store, record.ID, 'running');
  deps.log(`upgrade: to shoal ${exe.version} (sha256 ${exe.sha256.slice(0, 12)}…), ${record.Nodes.filter((n) => n.State === 'pending').length} node(s), workers first`);
  return record;
}

/** `shoal fleet upgrade --rollback`: every node the last upgrade replaced gets its previous executable back. */
export async function beginRollback(deps: Pick<PlanDeps, 'store' | 'log'>, leaderId: string | null): Promise<UpgradeRecord> {
  const last = currentUpgrade(deps.store);
  if (!last || last.Kind !== 'upgrade') throw new InvalidArgumentError(last ? `the last change was a rollback to shoal ${last.Version} already` : 'there was no upgrade to roll back');
  const from = [...new Set(last.Nodes.map((n) => n.From).filter(Boolean))];
  if (from.length !== 1) throw new InvalidArgumentError(`the nodes ran different versions before the upgrade (${from.join(', ')}): roll back by upgrading to the one you want`);
  const target = from[0]!;
  const at = new Date().toISOString();
  const nodes = ordered(deps.store, leaderId);
  const record: UpgradeRecord = {
    ID: newId(), Kind: 'rollback', Version: target, Sha256: '', Size: 0, Phase: 'running', Parallelism: last.Parallelism,
    Nodes: nodes.map((n): UpgradeNode => {
      const skip = versionOf(n) === target;
      return { NodeID: n.ID, Hostname: n.Description?.Hostname ?? '', Role: n.Spec.Role === 'manager' ? 'manager' : 'worker', From: versionOf(n), State: skip ? 'skipped' : 'pending', ...(skip ? { Message: `runs ${target} already` } : {}), UpdatedAt: at };
    }),
    StartedAt: at, UpdatedAt: at,
  };
  // A rollback may take over a paused or running upgrade: the driver follows whichever record is current.
  await changeUpgrade(deps.store, () => record);
  deps.log(`upgrade: rolling back to shoal ${target}, ${record.Nodes.filter((n) => n.State === 'pending').length} node(s)`);
  return record;
}

