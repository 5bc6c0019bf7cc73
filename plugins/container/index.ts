/**
 * The container executor: runs `ContainerSpec` tasks through the Docker Engine API (dockerode over
 * the engine's unix socket, or `DOCKER_HOST`). The engine keeps the containers; the executor only
 * names and labels them so a restarted daemon finds its tasks again (see controller.ts).
 */
import Docker from 'dockerode';
import type { Controller, Executor, ExecutorCapabilities, Fingerprint, TaskContext } from '../../src/executor/contract.ts';
import type { Task } from '../../src/types/index.ts';
import { ContainerController } from './controller.ts';
import { engineMessage } from './engine.ts';
import { validateContainerSpec } from './spec.ts';

export { ContainerController, UnhealthyError } from './controller.ts';
export { containerName, createOptions, LABEL_NODE, LABEL_SERVICE, LABEL_TASK, validateContainerSpec } from './spec.ts';

export interface ContainerExecutorOptions {
  /** The engine's unix socket. Default: `DOCKER_HOST` when set, else /var/run/docker.sock. */
  socketPath?: string;
}

const CAPABILITIES: ExecutorCapabilities = {
  recover: true, stats: true, logsFollow: true, signals: true, isolation: true, runAsUser: true,
};

/** Where the engine is, for messages: "unix:///var/run/docker.sock". */
export function engineAddress(opts: ContainerExecutorOptions = {}): string {
  if (opts.socketPath) return `unix://${opts.socketPath}`;
  return process.env.DOCKER_HOST || 'unix:///var/run/docker.sock';
}

/** A dockerode client for the options (dockerode itself reads DOCKER_HOST when no socket is given). */
export function engineClient(opts: ContainerExecutorOptions = {}): Docker {
  return opts.socketPath ? new Docker({ socketPath: opts.socketPath }) : new Docker();
}

/** ping, version and info take `{ abortSignal }` at run time; the type package leaves it out. */
interface Bounded {
  ping(o: object): Promise<unknown>;
  version(o: object): Promise<Docker.DockerVersion>;
  info(o: object): Promise<{ NCPU?: number; MemTotal?: number; CgroupVersion?: string; Driver?: string }>;
}

export function createContainerExecutor(opts: ContainerExecutorOptions = {}): Executor {
  let docker: Docker | undefined;
  // Made on first use: a node without an engine still loads the executor and reports it unhealthy.
  const client = () => (docker ??= engineClient(opts));
  return {
    name: 'container',
    capabilities: CAPABILITIES,
    async fingerprint(signal?: AbortSignal): Promise<Fingerprint> {
      const where = engineAddress(opts);
      const o = { ...(signal ? { abortSignal: signal } : {}) };
      try {
        const pong = String(await (client() as unknown as Bounded).ping(o));
        if (pong !== 'OK') return { healthy: false, message: `Docker Engine at ${where} answered ping with ${JSON.stringify(pong)}`, attributes: {} };
        const [v, info] = await Promise.all([(client() as unknown as Bounded).version(o), (client() as unknown as Bounded).info(o)]);
        const attributes: Record<string, string> = {
          'container.engine': 'docker',
          'container.engine.version': v.Version,
          'container.api.version': v.ApiVersion,
          'container.os': v.Os,
          'container.arch': v.Arch,
          ...(info.CgroupVersion ? { 'container.cgroup.version': String(info.CgroupVersion) } : {}),
          ...(info.Driver ? { 'container.storage.driver': String(info.Driver) } : {}),
        };
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
      return new ContainerController(client(), task, ctx);
    },
  };
}
