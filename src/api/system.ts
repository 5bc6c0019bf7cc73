import { type Context, Hono } from 'hono';
import { cpus, hostname, totalmem } from 'node:os';
import type { ApiDeps } from './deps.ts';

export function systemRoutes(deps: ApiDeps): Hono {
  const { store, version } = deps;
  const app = new Hono();

  const ping = (c: Context) => {
    c.header('API-Version', version.ApiVersion);
    c.header('OSType', version.Os);
    c.header('Swarm', store.list('clusters').length ? 'active/manager' : deps.managersIfWorker?.() ? 'active/worker' : 'inactive');
    c.header('Cache-Control', 'no-cache, no-store, must-revalidate');
    return c.text('OK');
  };
  app.get('/_ping', ping);
  app.on('HEAD', '/_ping', ping);

  app.get('/version', (c) =>
    c.json({
      Platform: { Name: 'shoal' },
      Components: [{ Name: 'Engine', Version: version.Version, Details: { ApiVersion: version.ApiVersion, MinAPIVersion: '1.24', GitCommit: version.GitCommit ?? '', Os: version.Os, Arch: version.Arch, KernelVersion: '', Experimental: 'false', BuildTime: '', GoVersion: '' } }],
      Version: version.Version,
      ApiVersion: version.ApiVersion,
      MinAPIVersion: '1.24',
      GitCommit: version.GitCommit ?? '',
      Os: version.Os,
      Arch: version.Arch,
      KernelVersion: '',
    }),
  );

  app.get('/info', async (c) => {
    await store.sync(c.req.raw.signal);
    const cluster = store.list('clusters')[0];
    const nodeId = deps.nodeId();
    const workerOf = deps.managersIfWorker?.() ?? null;
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
        NodeAddr: self?.Status?.Addr ?? '',
        LocalNodeState: cluster ? 'active' : 'inactive',
        ControlAvailable: !!cluster && self?.Spec.Role === 'manager',
        Error: '',
        RemoteManagers: nodes.filter((n) => n.ManagerStatus).map((n) => ({ NodeID: n.ID, Addr: n.ManagerStatus!.Addr })),
        Nodes: nodes.length,
        Managers: nodes.filter((n) => n.Spec.Role === 'manager').length,
        ...(cluster ? { Cluster: { ID: cluster.ID, Version: cluster.Version, CreatedAt: cluster.CreatedAt, UpdatedAt: cluster.UpdatedAt, Spec: cluster.Spec } } : {}),
        // A worker holds no cluster state: it is active, without control, and knows where the managers are.
        ...(workerOf ? { LocalNodeState: 'active', ControlAvailable: false, RemoteManagers: workerOf.map((Addr) => ({ NodeID: '', Addr })) } : {}),
      },
    });
  });

  return app;
}
