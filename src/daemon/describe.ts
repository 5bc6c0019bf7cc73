import { arch, cpus, hostname, platform, totalmem } from 'node:os';
import { TASK_PATCH_FEATURE } from '../store/patch.ts';
import { VERSION } from '../lib/version.ts';
import type { NodeDescription } from '../types/index.ts';

export interface RuntimeHealth { Name: string; Healthy: boolean; Message?: string }

/** What this host is and can run, as the node reports it to the managers. */
export function describeHost(runtimes: RuntimeHealth[]): NodeDescription {
  return {
    Hostname: hostname(),
    Platform: { Architecture: dockerArch(arch()), OS: platform() },
    Resources: { NanoCPUs: cpus().length * 1e9, MemoryBytes: totalmem() },
    Engine: { EngineVersion: VERSION, Plugins: runtimes.map((r) => ({ Type: 'Runtime', Name: r.Name })) },
    Runtimes: runtimes,
    Features: [TASK_PATCH_FEATURE],
  };
}

function dockerArch(a: string): string {
  return a === 'x64' ? 'x86_64' : a === 'arm64' ? 'aarch64' : a;
}
