/**
 * Request bodies, validated with zod. Objects are strict where Docker's schema is closed and our own
 * (ProcessSpec, MockSpec, RestartPolicy, Resources…); loose where the docker CLI sends fields we do not
 * model yet (ContainerSpec, TaskTemplate's Networks/LogDriver, Placement's Preferences…), which are
 * accepted and kept. Every message names the field path: `TaskTemplate.RestartPolicy.Delay: expected a number`.
 */
import { z } from 'zod';
import { InvalidArgumentError } from '../lib/errors.ts';

const MAX_NS = 10 * 365 * 24 * 3600 * 1e9; // ten years: anything larger is a unit mistake
const durationNs = z.number().int().min(0).max(MAX_NS);
const labels = z.record(z.string().max(1024), z.string().max(64 * 1024));
const strList = (max: number) => z.array(z.string().max(64 * 1024)).max(max);
const envList = z.array(z.string().min(1).max(64 * 1024).regex(/^[^=]+(=|$)/, 'expected KEY=VALUE')).max(4096);

const resourceValues = z.looseObject({
  NanoCPUs: z.number().int().min(0).optional(),
  MemoryBytes: z.number().int().min(0).optional(),
  Pids: z.number().int().min(0).optional(),
  GenericResources: z.array(z.unknown()).optional(),
});

export const restartPolicySchema = z.strictObject({
  Condition: z.enum(['none', 'on-failure', 'any']).optional(),
  Delay: durationNs.optional(),
  MaxAttempts: z.number().int().min(0).max(1_000_000).optional(),
  Window: durationNs.optional(),
});

const placement = z.strictObject({
  Constraints: strList(256).optional(),
  Preferences: z.array(z.unknown()).max(64).optional(),
  MaxReplicas: z.number().int().min(0).optional(),
  Platforms: z.array(z.unknown()).max(64).optional(),
});

const mount = z.looseObject({
  Type: z.enum(['bind', 'volume', 'tmpfs']),
  Source: z.string().max(4096).optional(),
  Target: z.string().min(1, 'expected a path in the container').max(4096),
  ReadOnly: z.boolean().optional(),
  VolumeOptions: z.looseObject({ NoCopy: z.boolean().optional(), Labels: labels.optional() }).optional(),
  TmpfsOptions: z.looseObject({ SizeBytes: z.number().int().min(0).optional(), Mode: z.number().int().min(0).max(0o7777).optional() }).optional(),
});

const healthcheck = z.looseObject({
  Test: strList(4096).optional(),
  Interval: durationNs.optional(),
  Timeout: durationNs.optional(),
  Retries: z.number().int().min(0).max(1_000_000).optional(),
  StartPeriod: durationNs.optional(),
  StartInterval: durationNs.optional(),
});

const fileTarget = z.strictObject({
  Name: z.string().min(1, 'expected a file name').max(4096),
  UID: z.string().max(32).optional(),
  GID: z.string().max(32).optional(),
  Mode: z.number().int().min(0).max(0o7777).optional(),
});
const secretRef = z.strictObject({ File: fileTarget.optional(), SecretID: z.string().max(256).optional(), SecretName: z.string().max(256).optional() });
const configRef = z.strictObject({
  File: fileTarget.optional(), ConfigID: z.string().max(256).optional(), ConfigName: z.string().max(256).optional(),
  Runtime: z.unknown().optional(),
});
/** `Secrets`/`Configs` of every runtime spec (Docker's ContainerSpec fields; ours on the others). */
const fileRefs = { Secrets: z.array(secretRef).max(256).optional(), Configs: z.array(configRef).max(256).optional() };
/** A plugin's own spec is the plugin's to check, but its `Secrets`/`Configs` are the daemon's. */
export const pluginFileRefsSchema = z.looseObject(fileRefs);

const containerSpec = z.looseObject({
  ...fileRefs,
  Image: z.string().min(1, 'expected an image name').max(4096),
  Hostname: z.string().max(253).optional(),
  Init: z.boolean().nullable().optional(),
  Mounts: z.array(mount).max(256).optional(),
  Healthcheck: healthcheck.optional(),
  Command: strList(4096).optional(),
  Args: strList(4096).optional(),
  Env: envList.optional(),
  Dir: z.string().max(4096).optional(),
  User: z.string().max(256).optional(),
  Labels: labels.optional(),
  StopSignal: z.string().max(32).optional(),
  StopGracePeriod: durationNs.optional(),
});

export const processSpecSchema = z.strictObject({
  Command: z.array(z.string().max(64 * 1024)).min(1, 'expected the program and its arguments (at least one element)').max(4096),
  Env: envList.optional(),
  Dir: z.string().max(4096).optional(),
  User: z.string().max(256).optional(),
  Groups: z.array(z.string().min(1).max(256)).max(64).optional(),
  StopSignal: z.string().max(32).optional(),
  StopGracePeriod: durationNs.optional(),
  Healthcheck: healthcheck.optional(),
  Isolation: z.strictObject({ Pid: z.boolean().optional(), Mount: z.boolean().optional(), Network: z.boolean().optional() }).optional(),
  ...fileRefs,
});

export const mockSpecSchema = z.strictObject({
  RunFor: durationNs.optional(),
  ExitCode: z.number().int().min(0).max(255).optional(),
  StartError: z.string().max(4096).optional(),
  PrepareError: z.string().max(4096).optional(),
  IgnoreStop: z.boolean().optional(),
  StopGracePeriod: durationNs.optional(),
  ...fileRefs,
});

export const vmSpecSchema = z.strictObject({
  Kernel: z.string().min(1).max(4096).optional(),
  Initrd: z.string().min(1).max(4096).optional(),
  Disk: z.string().min(1).max(4096).optional(),
  Cmdline: z.string().max(4096).optional(),
  StopGracePeriod: durationNs.optional(),
  Healthcheck: healthcheck.optional(),
  ...fileRefs,
});

export const taskSpecSchema = z.strictObject({
  Runtime: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'expected a runtime name like "process" (lowercase letters, digits, dashes)').optional(),
  ContainerSpec: containerSpec.optional(),
  ProcessSpec: processSpecSchema.optional(),
  VMSpec: vmSpecSchema.optional(),
  MockSpec: mockSpecSchema.optional(),
  PluginSpec: z.record(z.string(), z.unknown()).optional(),
  Resources: z.strictObject({ Limits: resourceValues.optional(), Reservations: resourceValues.optional() }).optional(),
  RestartPolicy: restartPolicySchema.optional(),
  Placement: placement.optional(),
  ForceUpdate: z.number().int().min(0).optional(),
  // Sent by the docker CLI; kept, not used yet.
  Networks: z.array(z.unknown()).max(64).optional(),
  LogDriver: z.unknown().optional(),
});

const updateConfig = z.strictObject({
  Parallelism: z.number().int().min(0).optional(),
  Delay: durationNs.optional(),
  FailureAction: z.enum(['pause', 'continue', 'rollback']).optional(),
  Monitor: durationNs.optional(),
  MaxFailureRatio: z.number().min(0).max(1).optional(),
  Order: z.enum(['stop-first', 'start-first']).optional(),
});

const portConfig = z.strictObject({
  Name: z.string().max(256).optional(),
  Protocol: z.enum(['tcp', 'udp']).optional(),
  TargetPort: z.number().int().min(1).max(65535),
  PublishedPort: z.number().int().min(0).max(65535).optional(),
  PublishMode: z.enum(['ingress', 'host']).optional(),
});

export const MAX_REPLICAS = 10_000;
/** Every completion keeps a task in the store until the next iteration: bounded. */
export const MAX_JOB_COMPLETIONS = 100_000;

export const serviceSpecSchema = z.strictObject({
  Name: z
    .string()
    .max(63, 'expected at most 63 characters')
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'expected letters, digits, "_", "." or "-", starting with a letter or digit')
    .optional(),
  Labels: labels.optional(),
  TaskTemplate: taskSpecSchema,
  Mode: z
    .strictObject({
      Replicated: z.strictObject({ Replicas: z.number().int().min(0, 'expected a non-negative number').max(MAX_REPLICAS).optional() }).optional(),
      Global: z.strictObject({}).optional(),
      ReplicatedJob: z
        .strictObject({
          MaxConcurrent: z.number().int().min(1, 'expected at least 1 (tasks run at once)').max(MAX_REPLICAS).optional(),
          TotalCompletions: z.number().int().min(0, 'expected a non-negative number').max(MAX_JOB_COMPLETIONS).optional(),
        })
        .optional(),
      GlobalJob: z.strictObject({}).optional(),
    })
    .optional(),
  UpdateConfig: updateConfig.optional(),
  RollbackConfig: updateConfig.optional(),
  Networks: z.array(z.unknown()).max(64).optional(),
  EndpointSpec: z.strictObject({ Mode: z.enum(['vip', 'dnsrr']).optional(), Ports: z.array(portConfig).max(1024).optional() }).optional(),
});
export type ServiceSpecInput = z.infer<typeof serviceSpecSchema>;

export const nodeSpecSchema = z.strictObject({
  Name: z.string().max(256).optional(),
  Labels: labels.optional(),
  Role: z.enum(['manager', 'worker']).optional(),
  Availability: z.enum(['active', 'pause', 'drain']).optional(),
});

export const swarmInitSchema = z.looseObject({
  ListenAddr: z.string().max(1024).optional(),
  AdvertiseAddr: z.string().max(1024).optional(),
  Spec: z.looseObject({}).optional(),
});

export const swarmJoinSchema = z.looseObject({
  RemoteAddrs: z.array(z.string().max(1024)).min(1).max(16),
  JoinToken: z.string().max(256),
  ListenAddr: z.string().max(1024).optional(),
  AdvertiseAddr: z.string().max(1024).optional(),
});

/** Docker's `filters` query parameter: `{"k":["v",…]}` or the older `{"k":{"v":true}}`. */
export const filtersSchema = z.record(z.string(), z.union([z.array(z.string()), z.record(z.string(), z.boolean())]));

const ARTICLE: Record<string, string> = { array: 'an array', object: 'an object', integer: 'an integer', int: 'an integer' };

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type': {
      const expected = String(issue.expected);
      return `expected ${ARTICLE[expected] ?? `a ${expected}`}`;
    }
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return issue.message;
  }
}

export function pathOf(path: PropertyKey[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s;
}

/** Parse `input` or throw InvalidArgumentError naming the first bad field. */
export function validate<S extends z.ZodType>(schema: S, input: unknown, prefix = ''): z.infer<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const path: PropertyKey[] = [...(prefix ? [prefix] : []), ...issue.path];
  if (issue.code === 'unrecognized_keys' && issue.keys.length === 1) {
    throw new InvalidArgumentError(`${pathOf([...path, issue.keys[0]!])}: unknown field`);
  }
  throw new InvalidArgumentError(`${pathOf(path) || 'body'}: ${describeIssue(issue)}`);
}
