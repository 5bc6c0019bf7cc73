import { type Context, Hono } from 'hono';
import { cpus, hostname, totalmem } from 'node:os';
import { errorMessage } from '../lib/errors.ts';
import type { Node } from '../types/index.ts';
import type { ApiDeps } from './deps.ts';

/**
 * How long GET /info waits for a linearizable read before it answers from this manager's local
 * state (no leader, no quorum, a leader that died unnoticed): Docker's `info` answers then too.
 */
export const INFO_READ_BOUND_MS = 2_000;

export function systemRoutes(deps: ApiDeps): Hono {
  const { store, version } = deps;
  const app = new Hono();

  const ping = (c: Context) => {
    c.header('API-Version', version.ApiVersion);
    c.header('OSType', version.Os);
    const workerOf = deps.managersIfWorker?.();
    c.header('Swarm', workerOf ? 'active/worker' : store.list('clusters').length || deps.nodeId() ? 'active/manager' : 'inactive');
    c.header('Cache-Control', 'no-cache, no-store, must-revalidate');
    return c.text('OK');
  };
  app.get('/_ping', ping);
  app.on('HEAD', '/_ping', ping);

  app.get('/version', (c) => c.json(versionBody(version)));

  // `docker system df`: shoal keeps no images, containers, volumes or build cache of its own (a
  // container task's engine does): Docker's shape, empty.
  app.get('/system/df', (c) => c.json({ LayersSize: 0, Images: [], Containers: [], Volumes: [], BuildCache: [] }));

  app.get('/info', async (c) => {
    // Like Docker's: without a leader (an election, a lost quorum, a manager that has just joined)
    // the answer comes from what this manager holds, possibly stale, with the reason in Swarm.Error.
    let error = '';
    try {
      await store.sync(AbortSignal.any([c.req.raw.signal, AbortSignal.timeout(INFO_READ_BOUND_MS)]));
    } catch (err) {
      if (c.req.raw.signal.aborted) throw err;
      error = `the cluster state shown may be stale: ${errorMessage(err)}`;
    }
    const cluster = store.list('clusters')[0];
    const nodeId = deps.nodeId();
    const workerOf = deps.managersIfWorker?.() ?? null;
    const local = deps.localView?.();
    const isManager = !!nodeId && !workerOf;
    const nodes = cluster ? store.list('nodes') : [];
    const self = nodeId ? store.get('nodes', nodeId) : undefined;
    const services = cluster ? store.list('services') : [];
    const tasks = cluster ? store.list('tasks') : [];
    return c.json({
      ID: nodeId ?? '',
      Name: self?.Description?.Hostname ?? hostname(),
      ServerVersion: version.Version,
      OperatingSystem: version.Os,
      OSType: version.Os,
      Architecture: version.Arch,
      NCPU: cpus().length,
      MemTotal: totalmem(),
      Services: services.length,
      Tasks: tasks.length,
      TasksRunning: tasks.filter((t) => t.Status.State === 'running').length,
      Runtimes: Object.fromEntries((self?.Description?.Runtimes ?? []).map((r) => [r.Name, { Healthy: r.Healthy, ...(r.Message ? { Message: r.Message } : {}) }])),
      Swarm: {
        NodeID: nodeId ?? '',
        NodeAddr: self?.Status?.Addr || local?.nodeAddr || '',
        LocalNodeState: cluster || nodeId ? 'active' : 'inactive',
        // A manager whose store has not received its own node yet (just joined) is still one.
        ControlAvailable: isManager && (self ? self.Spec.Role === 'manager' : true),
        Error: isManager ? error : '',
        RemoteManagers: remoteManagers(nodes, local?.managers ?? []),
        Nodes: nodes.length,
        Managers: nodes.filter((n) => n.Spec.Role === 'manager').length,
        ...(cluster ? { Cluster: { ID: cluster.ID, Version: cluster.Version, CreatedAt: cluster.CreatedAt, UpdatedAt: cluster.UpdatedAt, Spec: cluster.Spec, RootRotationInProgress: !!cluster.RootCA?.RootRotation } } : {}),
        // A worker holds no cluster state: it is active, without control, and knows where the managers are.
        ...(workerOf ? { LocalNodeState: 'active', ControlAvailable: false, RemoteManagers: workerOf.map((Addr) => ({ NodeID: '', Addr })) } : {}),
      },
    });
  });

  return app;
}

/** Docker's GET /version answer. */
export function versionBody(version: ApiDeps['version']) {
  return {
    Platform: { Name: 'shoal' },
    Components: [{ Name: 'Engine', Version: version.Version, Details: { ApiVersion: version.ApiVersion, MinAPIVersion: '1.24', GitCommit: version.GitCommit ?? '', Os: version.Os, Arch: version.Arch, KernelVersion: '', Experimental: 'false', BuildTime: '', GoVersion: '' } }],
    Version: version.Version,
    ApiVersion: version.ApiVersion,
    MinAPIVersion: '1.24',
    GitCommit: version.GitCommit ?? '',
    Os: version.Os,
    Arch: version.Arch,
    KernelVersion: '',
  };
}

/** Managers as the store knows them, else as this host remembers them (cluster.json). */
function remoteManagers(nodes: Node[], remembered: { NodeID: string; Addr: string }[]): { NodeID: string; Addr: string }[] {
  const known = nodes.filter((n) => n.ManagerStatus && n.Spec.Role === 'manager').map((n) => ({ NodeID: n.ID, Addr: n.ManagerStatus!.Addr }));
  return known.length ? known : remembered;
}
