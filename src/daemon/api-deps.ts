/** What the admin API asks of this daemon (api/deps.ts), answered from its context and parts. */
import { arch, platform } from 'node:os';
import type { ApiDeps } from '../api/deps.ts';
import type { ExecutorCatalog } from '../executor/catalog.ts';
import type { LoadReport } from '../executor/loader.ts';
import { UnavailableError } from '../lib/errors.ts';
import { API_VERSION, COMMIT, VERSION } from '../lib/version.ts';
import type { NodeRole } from '../types/index.ts';
import { takeBackup } from './backup.ts';
import { currentCluster } from './cluster.ts';
import type { DaemonContext } from './context.ts';
import { daemonMetrics } from './metrics.ts';
import type { NetService } from './net-service.ts';
import type { RoleChanges } from './roles/changes.ts';

export interface ApiParts {
  net: NetService;
  changes: RoleChanges;
  catalog: ExecutorCatalog;
  plugins: LoadReport;
  upgrade?: ApiDeps['upgrade'];
}

export function apiDeps(ctx: DaemonContext, { net, changes, catalog, plugins, upgrade }: ApiParts): ApiDeps {
  return {
    store: ctx.store,
    nodeId: () => (ctx.role ? ctx.nodeId : null),
    identityReady: () => net.ready(),
    initCluster: (req) => changes.init(req),
    joinCluster: (req) => changes.join(req),
    leaveCluster: (force) => changes.leave(force),
    rotateJoinToken: (role) => rotateToken(ctx, net, role),
    planRootRotation: async (cluster, req) => (await import('./ca-rotation.ts')).planRotation(cluster, req),
    issuerInfo: async (pem) => (await import('./ca-rotation.ts')).issuerInfoOf(pem),
    localView: () => ({
      nodeAddr: ctx.addrs.advertise.host,
      managers: ctx.membership?.Managers.map((m) => ({ NodeID: m.NodeID, Addr: m.Addr })) ?? [],
    }),
    managersIfWorker: () => (ctx.role === 'worker' ? [...new Set([...ctx.sessionManagers, ...(ctx.membership?.Managers ?? []).map((m) => m.Addr)])] : null),
    validateTaskSpec: (spec) => {
      const runtime = spec.Runtime ?? (spec.ContainerSpec ? 'container' : 'process');
      if (!catalog.has(runtime)) return `TaskTemplate.Runtime: unknown runtime "${runtime}" (this node has: ${catalog.names().join(', ')})`;
      return catalog.get(runtime).validate(spec);
    },
    taskLogs: (task, o) => {
      const d = ctx.dispatcher;
      if (!d) throw new UnavailableError(ctx.role === 'manager' ? 'task logs are served by the raft leader: ask the leading manager' : 'this node is not a manager');
      return d.taskLogs(task.ID, { follow: o.follow, since: o.since, tail: o.tail, signal: o.signal });
    },
    raftStatus: () => {
      const s = ctx.role === 'manager' ? ctx.state.raft?.status : undefined;
      if (!s?.running) return null;
      return { role: s.role, leader: s.leader, term: s.term, commit: s.commit, applied: s.applied, lastIndex: s.lastIndex, snapshotIndex: s.snapshotIndex, voters: s.conf.voters, learners: s.conf.learners, progress: s.progress };
    },
    plugins: () => plugins,
    metrics: daemonMetrics(ctx),
    backup: (signal) => takeBackup(ctx, signal),
    upgrade,
    version: { Version: VERSION, ApiVersion: API_VERSION, GitCommit: COMMIT, Os: platform(), Arch: arch() === 'x64' ? 'amd64' : arch() },
  };
}

async function rotateToken(ctx: DaemonContext, net: NetService, role: NodeRole): Promise<void> {
  if (!currentCluster(ctx.store)?.RootCA) await net.ready(); // the tokens come with the CA: make them first
  const { rotatedToken } = await import('./ca-service.ts');
  const id = currentCluster(ctx.store)?.ID;
  if (!id) throw new UnavailableError('this node is not in a cluster');
  await ctx.store.update((tx) => {
    const c = tx.get('clusters', id);
    if (!c) throw new UnavailableError('this node is not in a cluster');
    const token = rotatedToken(c, role);
    tx.update('clusters', { ...c, JoinTokens: { ...c.JoinTokens, [role === 'worker' ? 'Worker' : 'Manager']: token } });
  });
}
