/**
 * Overlay networks across two dist/shoal hosts made of network namespaces (item 6 of issue 6): a
 * manager and a worker; `web` runs only on the worker, `client` only on the manager, both process
 * tasks on the overlay network `app`. The client reaches `web` by name (the embedded DNS on its
 * host's gateway answers the VIP; DNAT in its namespace sends it across VXLAN to the worker), and
 * `dig` checks the answers; a port published by `web` answers on the manager's address too (the
 * manager's mesh goes through the worker's, which reaches its task on the overlay).
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { sandboxName } from '../../src/mesh/network-agent.ts';
import { Cluster, type Daemon, disposeAll, logsOnFailure, type NetHost, requireNetns, waitFor } from '../harness/index.ts';

const unavailable = requireNetns() ?? (Bun.which('python3') ? null : 'needs python3 for its tasks');

const WEB = 'mkdir -p www && echo "web says $SHOAL_TASK_NAME" > www/index.html && cd www && exec python3 -m http.server 8000';
const CLIENT = `while true; do python3 -c '
import socket, urllib.request
print("resolved", socket.gethostbyname("web"), flush=True)
print("got", urllib.request.urlopen("http://web:8000/", timeout=2).read().decode().strip(), flush=True)
' 2>&1 | tail -2; sleep 0.3; done`;

describe.skipIf(unavailable !== null)(`overlay networks between namespace hosts${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  afterEach(() => disposeAll());

  test('a task on one host reaches a service on another by name, through its VIP; DNS answers; a published port answers on both hosts', logsOnFailure(async () => {
    let mgr: Daemon | undefined;
    let cluster: Cluster | undefined;
    const taskIds = new Set<string>();
    const remember = async () => { for (const t of await mgr?.tasks().catch(() => []) ?? []) taskIds.add(t.ID); };
    try {
      cluster = await Cluster.netns({ hosts: 2, prefix: '10.78.0' });
      const net = cluster.net!;
      const [h0, h1] = net.hosts as [NetHost, NetHost];
      const { managers, workers, ids } = await cluster.boot({ managers: 1, workers: 1 });
      const [m, w] = [managers[0]!, workers[0]!];
      mgr = m;
      const [mId, wId] = [ids.get(m)!, ids.get(w)!];

      await m.ok('network', 'create', '--driver', 'overlay', 'app');
      await m.ok('service', 'create', '--detach', '--name', 'web', '--network', 'app', '--replicas', '2', '--constraint', `node.id==${wId}`,
        '--publish', 'published=18080,target=8000', '--', 'sh', '-c', WEB);
      await m.ok('service', 'create', '--detach', '--name', 'client', '--network', 'app', '--constraint', `node.id==${mId}`, '--', 'sh', '-c', CLIENT);
      const webTasks = await waitFor('2 web tasks running', async () => {
        const r = await m.running('web');
        return r.length === 2 ? r : null;
      }, 60_000);
      expect(webTasks.every((t) => t.NodeID === wId)).toBe(true);
      const svc = (await m.json<any[]>('/services')).find((s) => s.Spec.Name === 'web');
      const vip = (svc.Endpoint.VirtualIPs[0].Addr as string).split('/')[0]!;
      const taskAddrs = webTasks.map((t) => (t.NetworksAttachments[0].Addresses[0] as string).split('/')[0]!).sort();
      const gateway = (svc.Endpoint.VirtualIPs[0].Addr as string).replace(/\.\d+\/\d+$/, '.1');

      // By name across hosts: the client (on the manager's host) gets pages from web (on the worker's).
      const logs = await waitFor('the client to fetch a page from web by name', async () => {
        const out = await m.cli('service', 'logs', 'client');
        return /got web says web\.\d/.test(out.stdout) ? out.stdout : null;
      }, 60_000);
      expect(logs).toContain(`resolved ${vip}`);

      // DNS answers, with dig on each host's gateway (the resolver tasks are given).
      const dig = async (host: NetHost, name: string) => (await net.run(host, ['dig', '+short', '+time=2', '+tries=3', `@${gateway}`, name])).stdout.trim().split('\n').filter(Boolean).sort();
      if (Bun.which('dig')) {
        expect(await dig(h0, 'web')).toEqual([vip]);
        expect(await dig(h0, 'tasks.web')).toEqual(taskAddrs);
        expect(await dig(h1, 'tasks.web')).toEqual(taskAddrs);
        expect(await dig(h0, 'WEB.')).toEqual([vip]);
      } else {
        console.warn('dig not installed (apt-get install dnsutils): DNS checked through the client task only');
      }

      // The published port answers on the manager's address, where no web task runs.
      const page = await waitFor('the published port on the manager\'s host', async () => {
        const r = (await net.run(h0, ['curl', '-s', '--max-time', '2', `http://${h0.ip}:18080/`])).stdout;
        return r.includes('web says') ? r : null;
      }, 30_000);
      expect(page).toMatch(/web says web\.\d/);
      expect((await net.run(h1, ['curl', '-s', '--max-time', '2', `http://${h1.ip}:18080/`])).stdout).toMatch(/web says web\.\d/);
    } finally {
      // The tasks' own namespaces are global (/run/netns), not inside the hosts: removed by name.
      // Before the hosts go (their daemons with them): the tasks' namespaces are named after the tasks.
      await remember();
      await cluster?.[Symbol.asyncDispose]();
      disposeAll();
      for (const id of taskIds) Bun.spawnSync(['ip', 'netns', 'del', sandboxName(id)], { stderr: 'ignore' });
    }
  }), 180_000);
});
