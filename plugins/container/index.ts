/**
 * The container executor: runs `ContainerSpec` tasks through the Docker Engine API (dockerode over
 * the engine's unix socket, or `DOCKER_HOST`). The engine keeps the containers; the executor only
 * names and labels them so a restarted daemon finds its tasks again (see controller.ts).
 */
import type Docker from 'dockerode';
import type { Controller, Executor, ExecutorCapabilities, Fingerprint, TaskContext } from '../../src/executor/contract.ts';
import type { Task } from '../../src/types/index.ts';
import { ContainerController } from './controller.ts';
import { engineMessage } from './engine.ts';
import { sweepOwnNetworks } from './network.ts';
import { validateContainerSpec } from './spec.ts';

export { ContainerController, UnhealthyError } from './controller.ts';
export { containerName, createOptions, LABEL_NODE, LABEL_SERVICE, LABEL_TASK, validateContainerSpec } from './spec.ts';

export interface ContainerExecutorOptions {
  /** The engine's unix socket. Default: `DOCKER_HOST` when set, else /var/run/docker.sock. */
  socketPath?: string;
  /**
   * This node's ID: once the engine first answers, the Docker networks this node made and no
   * container uses (left by its last run) are removed (network.ts, `sweepOwnNetworks`).
   */
  nodeId?: string;
  /** The daemon's log, for that sweep. */
  log?: (msg: string) => void;
}

const CAPABILITIES: ExecutorCapabilities = {
  recover: true, stats: true, logsFollow: true, signals: true, isolation: true, runAsUser: true,
  secrets: true,
};

/** Where the engine is, for messages: "unix:///var/run/docker.sock". */
export function engineAddress(opts: ContainerExecutorOptions = {}): string {
  if (opts.socketPath) return `unix://${opts.socketPath}`;
  return process.env.DOCKER_HOST || 'unix:///var/run/docker.sock';
}

/**
 * A dockerode client for the options (dockerode itself reads DOCKER_HOST when no socket is given).
 * dockerode is loaded on first use: its module tree costs ~150 ms, which a daemon start (and a host
 * that never runs a container) should not pay.
 */
export async function engineClient(opts: ContainerExecutorOptions = {}): Promise<Docker> {
  const { default: Dockerode } = await import('dockerode');
  return opts.socketPath ? new Dockerode({ socketPath: opts.socketPath }) : new Dockerode();
}

/** ping, version and info take `{ abortSignal }` at run time; the type package leaves it out. */
interface Bounded {
  ping(o: { abortSignal?: AbortSignal }): Promise<unknown>;
  version(o: { abortSignal?: AbortSignal }): Promise<Docker.DockerVersion>;
  info(o: { abortSignal?: AbortSignal }): Promise<{ NCPU?: number; MemTotal?: number; CgroupVersion?: string; Driver?: string }>;
}

/** The engine's unix socket, when it is reached through one (else dockerode handles the address). */
function unixSocketOf(opts: ContainerExecutorOptions): string | undefined {
  if (opts.socketPath) return opts.socketPath;
  const host = process.env.DOCKER_HOST;
  if (!host) return '/var/run/docker.sock';
  return host.startsWith('unix://') ? host.slice('unix://'.length) : undefined;
}

/**
 * ping, version and info as plain HTTP on the engine's unix socket. The fingerprint runs at every
 * registration and every re-fingerprint; loading dockerode for it would cost ~100 ms of module
 * evaluation on a daemon's way to a ready API, on hosts that may never run a container.
 */
function probeOverUnix(socket: string): Bounded {
  const get = async (path: string, o: { abortSignal?: AbortSignal }, json: boolean): Promise<any> => {
    let res: Response;
    try {
      res = await fetch(`http://docker${path}`, { unix: socket, ...(o.abortSignal ? { signal: o.abortSignal } : {}) } as RequestInit);
    } catch (err) {
      const code = (err as { code?: string }).code;
      throw new Error(code ? `connect ${code} ${socket}` : (err as Error).message);
    }
    const body = json ? await res.json() as Record<string, unknown> : await res.text();
    if (!res.ok) throw new Error(`(HTTP code ${res.status}) ${typeof body === 'string' ? body : String(body.message ?? '')}`);
    return body;
  };
  return {
    ping: (o) => get('/_ping', o, false),
    version: (o) => get('/version', o, true),
    info: (o) => get('/info', o, true),
  };
}

export function createContainerExecutor(opts: ContainerExecutorOptions = {}): Executor {
  let docker: Promise<Docker> | undefined;
  // Made on first use: a node without an engine still loads the executor and reports it unhealthy.
  const client = () => (docker ??= engineClient(opts));
  let swept = false;
  const sweep = () => {
    if (swept || !opts.nodeId) return;
    swept = true;
    const log = opts.log ?? (() => {});
    void client().then((d) => sweepOwnNetworks(d, opts.nodeId!, log), (err) => log(`Docker networks of the last run: ${engineMessage(err)}`));
  };
  return {
    name: 'container',
    capabilities: CAPABILITIES,
    async fingerprint(signal?: AbortSignal): Promise<Fingerprint> {
      const where = engineAddress(opts);
      const o = { ...(signal ? { abortSignal: signal } : {}) };
      try {
        const socket = unixSocketOf(opts);
        const engine = socket ? probeOverUnix(socket) : (await client()) as unknown as Bounded;
        const pong = String(await engine.ping(o));
        if (pong !== 'OK') return { healthy: false, message: `Docker Engine at ${where} answered ping with ${JSON.stringify(pong)}`, attributes: {} };
        const [v, info] = await Promise.all([engine.version(o), engine.info(o)]);
        const attributes: Record<string, string> = {
          'container.engine': 'docker',
          'container.engine.version': v.Version,
          'container.api.version': v.ApiVersion,
          'container.os': v.Os,
          'container.arch': v.Arch,
          ...(info.CgroupVersion ? { 'container.cgroup.version': String(info.CgroupVersion) } : {}),
          ...(info.Driver ? { 'container.storage.driver': String(info.Driver) } : {}),
        };
        sweep();
        return {
          healthy: true, attributes,
          ...(info.NCPU && info.MemTotal ? { resources: { nanoCPUs: info.NCPU * 1e9, memoryBytes: info.MemTotal } } : {}),
        };
      } catch (err) {
        return { healthy: false, message: `Docker Engine at ${where} not reachable: ${engineMessage(err)}`, attributes: {} };
      }
    },
    validate: validateContainerSpec,
    controller(task: Task, ctx: TaskContext): Controller {
      return new ContainerController(client, task, ctx);
    },
  };
}
