/**
 * The ingress routing mesh across hosts, with dist/shoal on loopback: a manager on 127.0.0.1 (which
 * runs no task of the service) and two workers on 127.0.0.2 and .3, each host's mesh on its own
 * address. A port published on the manager's address reaches the task on a worker (a host-mode port
 * only on that worker); after the task's process is killed, its replacement is reached the same way;
 * scaled to two, both answer there. The same for a UDP port (datagram flows through host A's mesh).
 */
import { expect, test } from 'bun:test';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, type Daemon, freePort, logsOnFailure, waitFor } from '../harness/index.ts';

/** A tiny HTTP server that answers with its task id, on this host's mesh address and the given port. */
const SERVER = `
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = os.environ["SHOAL_TASK_ID"].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer((os.environ["SHOAL_NODE_ADDR"], int(sys.argv[1])), H).serve_forever()
`;

/** Who answers at host:port, over a new connection; null when nothing does. */
async function answer(host: string, port: number): Promise<string | null> {
  try {
    const r = await fetch(`http://${host}:${port}/`, { headers: { Connection: 'close' }, signal: AbortSignal.timeout(3000) });
    return r.ok ? await r.text() : null;
  } catch {
    return null;
  }
}

const running = async (d: Daemon, service: string) => d.running(service);

/** python3 (resolved, as tasks get no PATH search) and a temporary directory holding `script`. */
function pythonTask(what: string, script: string): { python: string; dir: string; path: string } {
  const python = Bun.which('python3') ? realpathSync(Bun.which('python3')!) : null;
  if (!python) throw new Error(`python3 is needed for this test (the task is ${what})`);
  const dir = mkdtempSync(join(tmpdir(), 'shoal-mesh-'));
  const path = join(dir, 'task.py');
  writeFileSync(path, script);
  return { python, dir, path };
}

/**
 * A manager and `workers` workers that stay workers (the automatic manager count would promote them,
 * and the services are constrained to workers), all ready; returns the manager.
 */
async function managerWithWorkers(cluster: Cluster, workers: number): Promise<Daemon> {
  const { managers } = await cluster.boot({ managers: 1, workers, init: ['--managers', '1'], readyMs: 20_000 });
  return managers[0]!;
}

test('a port published on one host reaches tasks on others, through kills and a scale-up', logsOnFailure(async () => {
  const { python, dir, path: script } = pythonTask('a small HTTP server', SERVER);
  try {
    await using cluster = Cluster.loopback();
    const a = await managerWithWorkers(cluster, 2);

    const published = freePort('127.0.0.1');
    const target = freePort('127.0.0.2');
    const hostPort = freePort('127.0.0.2');
    await a.ok('service', 'create', '--detach', '--name', 'web', '--constraint', 'node.role==worker',
      '--publish', `published=${published},target=${target}`, '--publish', `published=${hostPort},target=${target},mode=host`,
      '--', python, script, String(target));
    const [first] = await waitFor('the task running on a worker', async () => {
      const ts = await running(a, 'web');
      return ts.length === 1 ? ts : null;
    }, 20_000);
    const aId = (await a.json<any>('/info')).Swarm.NodeID;
    expect(first.NodeID).not.toBe(aId);

    // Host A (127.0.0.1) runs no task of the service: its mesh relays to the worker's task.
    await waitFor('the task answering through host A', async () => (await answer('127.0.0.1', published)) === first.ID, 15_000);
    // The compiled binary relays TCP with its native data path (src/mesh/native-relay.ts).
    expect(a.output).toMatch(new RegExp(`127\\.0\\.0\\.1:${published}/tcp \\(native relay, \\d threads?(, pinned)?\\)`));
    // Every host answers on the published port.
    for (const ip of ['127.0.0.2', '127.0.0.3']) expect(await answer(ip, published)).toBe(first.ID);
    // The host-mode port only where the task runs.
    const ipOf = new Map<string, string>();
    for (const [i, d] of cluster.daemons.entries()) ipOf.set((await d.json<any>('/info')).Swarm.NodeID, `127.0.0.${i + 1}`);
    const taskIp = ipOf.get(first.NodeID)!;
    await waitFor('the host-mode port on the task\'s host', async () => (await answer(taskIp, hostPort)) === first.ID, 10_000);
    for (const ip of ['127.0.0.1', '127.0.0.2', '127.0.0.3'].filter((x) => x !== taskIp)) expect(await answer(ip, hostPort)).toBeNull();

    // Kill the task's process: the replacement is reached through host A again.
    const pid = first.Status.ContainerStatus?.PID;
    expect(typeof pid).toBe('number');
    process.kill(pid, 'SIGKILL');
    const replacement = await waitFor('a replacement task answering through host A', async () => {
      const got = await answer('127.0.0.1', published);
      return got && got !== first.ID ? got : null;
    }, 25_000);
    expect((await running(a, 'web')).map((t) => t.ID)).toContain(replacement);

    // Two tasks (spread over the two workers): both answer through host A over new connections.
    await a.ok('service', 'scale', '--detach', 'web=2');
    const two = await waitFor('two running tasks', async () => {
      const ts = await running(a, 'web');
      return ts.length === 2 ? ts : null;
    }, 20_000);
    expect(new Set(two.map((t) => t.NodeID)).size).toBe(2);
    const want = new Set(two.map((t) => t.ID));
    const seen = new Set<string>();
    await waitFor('both tasks answering through host A', async () => {
      const got = await answer('127.0.0.1', published);
      if (got && want.has(got)) seen.add(got);
      return seen.size === 2;
    }, 15_000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}), 90_000);

/** A UDP server that answers each datagram with its task id and the datagram. */
const UDP_SERVER = `
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((os.environ["SHOAL_NODE_ADDR"], int(sys.argv[1])))
me = os.environ["SHOAL_TASK_ID"].encode()
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(me + b" " + data, peer)
`;

test('a UDP port published on one host reaches the task on another, through a kill', logsOnFailure(async () => {
  const { python, dir, path: script } = pythonTask('a small UDP server', UDP_SERVER);
  const replies: string[] = [];
  const client = await Bun.udpSocket({ hostname: '127.0.0.1', socket: { data: (_s, buf) => void replies.push(buf.toString()) } });
  try {
    await using cluster = Cluster.loopback();
    const a = await managerWithWorkers(cluster, 1);
    const published = freePort('127.0.0.1');
    const target = freePort('127.0.0.2');
    await a.ok('service', 'create', '--detach', '--name', 'echo', '--constraint', 'node.role==worker',
      '--publish', `${published}:${target}/udp`, '--', python, script, String(target));
    const [first] = await waitFor('the task running on the worker', async () => {
      const ts = await running(a, 'echo');
      return ts.length === 1 ? ts : null;
    }, 20_000);
    const service = await a.json<any>('/services/echo');
    expect(service.Endpoint.Ports).toEqual([expect.objectContaining({ Protocol: 'udp', PublishedPort: published, TargetPort: target })]);

    // Host A (127.0.0.1) runs no task: its mesh forwards the datagram to the worker's task and the reply back.
    // UDP promises nothing while the port is being set up: send until answered.
    const ask = (tag: string) =>
      waitFor(`a UDP reply to ${tag} through host A`, async () => {
        client.send(tag, published, '127.0.0.1');
        await Bun.sleep(50);
        return replies.find((r) => r.endsWith(` ${tag}`)) ?? null;
      }, 20_000);
    expect(await ask('ping-1')).toBe(`${first.ID} ping-1`);

    // Kill the task: the replacement answers the same client through the same port.
    process.kill(first.Status.ContainerStatus.PID, 'SIGKILL');
    const replacement = await waitFor('a replacement task', async () => {
      const ts = await running(a, 'echo');
      return ts.length === 1 && ts[0].ID !== first.ID ? ts[0] : null;
    }, 25_000);
    let n = 0;
    const got = await waitFor('a reply from the replacement', async () => {
      const r = await ask(`ping-after-${++n}`);
      return r.startsWith(replacement.ID) ? r : null;
    }, 25_000);
    expect(got.startsWith(`${replacement.ID} ping-after-`)).toBe(true);
  } finally {
    client.close();
    rmSync(dir, { recursive: true, force: true });
  }
}), 90_000);
