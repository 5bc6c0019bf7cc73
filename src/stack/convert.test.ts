import { describe, expect, test } from 'bun:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertStack } from './convert.ts';
import { parseCompose, type Tree } from './load.ts';

const dir = mkdtempSync(join(tmpdir(), 'shoal-stack-'));
writeFileSync(join(dir, 'pw.txt'), 's3cret');
writeFileSync(join(dir, 'web.env'), '# comment\nFROM_FILE=1\nBOTH=file\n');

function plan(yaml: string, env: Record<string, string> = {}) {
  const warnings: string[] = [];
  const tree: Tree = parseCompose(yaml, 'test.yml', env, new Set());
  const p = convertStack(tree, 'app', { dir, env, warn: (path, why) => warnings.push(why ? `${path}: ${why}` : path) });
  return { p, warnings, svc: (n: string) => p.services.find((s) => s.Name === `app_${n}`)! };
}

describe('convertStack', () => {
  test('a container service: image, entrypoint → Command, command → Args, env, labels, names', () => {
    const { p, svc } = plan(`
services:
  web:
    image: nginx:1.27
    entrypoint: ["/docker-entrypoint.sh"]
    command: nginx -g "daemon off;"
    env_file: web.env
    environment: { BOTH: env, PORT: "\${PORT:-80}" }
    labels: [a=b, bare]
    deploy: { labels: { tier: front } }
`);
    const s = svc('web');
    expect(s.Labels).toEqual({ tier: 'front', 'com.docker.stack.namespace': 'app', 'com.docker.stack.image': 'nginx:1.27' });
    expect(s.TaskTemplate.ContainerSpec).toMatchObject({ Image: 'nginx:1.27', Command: ['/docker-entrypoint.sh'], Args: ['nginx', '-g', 'daemon off;'], Labels: { a: 'b', bare: '', 'com.docker.stack.namespace': 'app' } });
    expect(s.TaskTemplate.ContainerSpec!.Env).toEqual(['FROM_FILE=1', 'BOTH=env', 'PORT=80']);
    // No networks named: the stack's default network, made for it.
    expect(s.TaskTemplate.Networks).toEqual([{ Target: 'app_default' }]);
    expect(p.networks.map((n) => n.Name)).toEqual(['app_default']);
    expect(s.Mode).toEqual({ Replicated: { Replicas: 1 } });
  });

  test('a process service from x-shoal-runtime, with a health check', () => {
    const { svc, warnings } = plan(`
services:
  api:
    x-shoal-runtime: process
    command: python3 -m http.server 8000
    working_dir: /tmp
    healthcheck: { test: "curl -f localhost:8000", interval: 2s, retries: 3 }
    volumes: [/data:/data]
`);
    expect(svc('api').TaskTemplate).toMatchObject({ Runtime: 'process', ProcessSpec: { Command: ['python3', '-m', 'http.server', '8000'], Dir: '/tmp', Healthcheck: { Test: ['CMD-SHELL', 'curl -f localhost:8000'], Interval: 2e9, Retries: 3 } } });
    expect(warnings).toEqual(['services.api.volumes: does not apply to x-shoal-runtime: process']);
  });

  test('deploy: mode, replicas, resources, placement, update/rollback config, restart policy', () => {
    const { svc } = plan(`
services:
  w:
    image: busybox
    deploy:
      replicas: 3
      resources: { limits: { cpus: "0.5", memory: 64M }, reservations: { memory: 32M } }
      placement: { constraints: [node.role==manager] }
      update_config: { parallelism: 2, delay: 1s, order: start-first, failure_action: rollback }
      rollback_config: { parallelism: 0, failure_action: pause }
      restart_policy: { condition: on-failure, delay: 5s, max_attempts: 3, window: 1m }
  g: { image: busybox, deploy: { mode: global } }
  j: { image: busybox, deploy: { mode: replicated-job, replicas: 4 } }
`);
    const w = svc('w');
    expect(w.Mode).toEqual({ Replicated: { Replicas: 3 } });
    expect(w.TaskTemplate.Resources).toEqual({ Limits: { NanoCPUs: 5e8, MemoryBytes: 64 * 1024 ** 2 }, Reservations: { MemoryBytes: 32 * 1024 ** 2 } });
    expect(w.TaskTemplate.Placement).toEqual({ Constraints: ['node.role==manager'] });
    expect(w.UpdateConfig).toEqual({ Parallelism: 2, Delay: 1e9, Order: 'start-first', FailureAction: 'rollback' });
    expect(w.RollbackConfig).toEqual({ Parallelism: 0, FailureAction: 'pause' });
    expect(w.TaskTemplate.RestartPolicy).toEqual({ Condition: 'on-failure', Delay: 5e9, MaxAttempts: 3, Window: 60e9 });
    expect(svc('g').Mode).toEqual({ Global: {} });
    expect(svc('j').Mode).toEqual({ ReplicatedJob: { TotalCompletions: 4 } });
  });

  test('ports, networks with aliases, secrets and configs, volumes', () => {
    const { p, svc } = plan(`
services:
  web:
    image: busybox
    ports: ["8080:80", "127.0.0.1:9090:90/udp", { target: 443, published: 8443, mode: host }]
    networks: { back: { aliases: [www] } }
    secrets: [pw, { source: pw, target: other, mode: 0400 }]
    configs: [conf]
    volumes: [data:/var/lib/data:ro, ./here:/here]
networks:
  back: { attachable: true, ipam: { config: [{ subnet: 10.9.0.0/24 }] } }
  ext: { external: true, name: shared }
secrets:
  pw: { file: ./pw.txt }
configs:
  conf: { content: "hello" }
volumes:
  data: {}
`);
    const s = svc('web');
    expect(s.EndpointSpec!.Ports).toEqual([
      { Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' },
      { Protocol: 'udp', TargetPort: 90, PublishedPort: 9090, PublishMode: 'ingress' },
      { Protocol: 'tcp', TargetPort: 443, PublishedPort: 8443, PublishMode: 'host' },
    ]);
    expect(s.TaskTemplate.Networks).toEqual([{ Target: 'app_back', Aliases: ['www'] }]);
    const cs = s.TaskTemplate.ContainerSpec!;
    expect(cs.Secrets).toEqual([
      { SecretID: '', SecretName: 'app_pw', File: { Name: 'pw', UID: '0', GID: '0', Mode: 0o444 } },
      { SecretID: '', SecretName: 'app_pw', File: { Name: 'other', UID: '0', GID: '0', Mode: 0o400 } },
    ]);
    expect(cs.Configs).toEqual([{ ConfigID: '', ConfigName: 'app_conf', File: { Name: 'conf', UID: '0', GID: '0', Mode: 0o444 } }]);
    expect(cs.Mounts).toEqual([{ Type: 'volume', Source: 'app_data', Target: '/var/lib/data', ReadOnly: true }, { Type: 'bind', Source: join(dir, 'here'), Target: '/here' }]);
    expect(p.networks).toEqual([{ Name: 'app_back', Driver: 'overlay', Labels: { 'com.docker.stack.namespace': 'app' }, Attachable: true, Internal: false, IPAM: { Config: [{ Subnet: '10.9.0.0/24' }] } }]);
    expect(p.external.networks).toEqual(['shared']);
    expect(Buffer.from(p.secrets[0]!.Data, 'base64').toString()).toBe('s3cret');
    expect(p.secrets[0]!.Labels['io.shoal.stack.digest']).toMatch(/^[0-9a-f]{64}$/);
    expect(Buffer.from(p.configs[0]!.Data, 'base64').toString()).toBe('hello');
  });

  test('unsupported keys are warned about, each by its path; x- extensions are not', () => {
    const { warnings } = plan(`
x-common: &c { image: busybox }
services:
  a:
    <<: *c
    build: .
    depends_on: [b]
    x-note: fine
    deploy: { endpoint_mode: vip, rollback_config: { bogus: 1 } }
  b: { image: busybox }
volumes_from: []
`);
    expect(warnings.sort()).toEqual(['(top).volumes_from', 'services.a.build', 'services.a.depends_on', 'services.a.deploy.rollback_config.bogus']);
  });

  test('bad input names the field', () => {
    expect(() => plan('services: { a: { image: x, deploy: { replicas: -1 } } }')).toThrow('services.a.deploy.replicas: expected an integer ≥ 0');
    expect(() => plan('services: { a: { image: x, deploy: { resources: { limits: { memory: lots } } } } }')).toThrow('services.a.deploy.resources.limits.memory');
    expect(() => plan('services: { a: { x-shoal-runtime: process } }')).toThrow('services.a: a process service needs command');
    expect(() => plan('services: { a: { command: ls } }')).toThrow('services.a.image: required');
    expect(() => plan('services: { a: { image: x, networks: [nope] } }')).toThrow('network "nope" is not defined');
    expect(() => plan('services: { a: { image: x, secrets: [nope] } }')).toThrow('secret "nope" is not defined');
    expect(() => plan('services: { a: { image: x, ports: ["80:99999"] } }')).toThrow('services.a.ports[0]');
    expect(() => plan('services: {}')).toThrow('defines no services');
    expect(() => plan('services: { a: { image: "${X:?set X}" } }')).toThrow('services.a.image: required variable X');
  });
});
