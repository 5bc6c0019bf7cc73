/**
 * Containers and VMs on an overlay network, through dist/shoal (the runtimes' half of issue 6's
 * overlay wiring; test/netns/overlay.test.ts does processes across two namespace hosts).
 *
 * Layout, and why a single host: the Docker engine (and the tap devices QEMU needs, next to the
 * bridges) live in the root network namespace, so a shoal host that runs containers must have its
 * daemon there. One dist/shoal daemon in the root namespace is manager and worker; the overlay
 * network `app` has a subnet picked at random in 10.231.0.0/16 (other agents' bridges may be in this
 * namespace too). On `app`:
 *   - `web`, a container (busybox httpd) with a published port;
 *   - `pyweb`, a process (python3 http.server) in its `shtask-` namespace;
 *   - `client`, a process fetching `http://web:8000/` by name: our DNS on the gateway answers the
 *     VIP, the DNAT rules in the client's namespace send it to the container's overlay address;
 *   - `cclient`, a container fetching `http://pyweb:8000/` by name: Docker's embedded DNS forwards
 *     to ours on the gateway, the VIP rules written into the container's namespace (through its pid)
 *     send it to the process's namespace;
 *   - the published port of `web` answers on the host (the mesh connects to the container's inner
 *     overlay address);
 *   - once the containers are removed (their Docker network with them, and Docker's firewall rules
 *     for the bridge), the processes still on the bridge keep reaching each other;
 *   - `vmweb`, a VM (test guest, busybox httpd in the guest) reached by `vclient`, a process, at its
 *     overlay address and by `tasks.vmweb`; the guest reaches `vclient` by `tasks.vclient`, and
 *     through VIPs, which a VM has no rules of its own for (the host's bridge answers for them and
 *     DNATs, see docs/mesh.md): `vclient` by name (our DNS answers the guest its VIP) and its own
 *     service `vmweb` by name (hairpin: the VIP's only task is the guest itself); the VM's
 *     published port answers on the host;
 *   - the daemon restarted under its tasks (--keep-tasks), a service scaled to two: a container
 *     reaches both tasks through the VIP (its rules rewritten after the restart);
 *   - a container whose health check fetches a page from a process service by name (its VIP)
 *     becomes running: its VIP rules are written once Docker has started it, before it is healthy;
 *   - a second network `app2` with a process service `other`: a process and a container on both
 *     networks resolve `other` (their resolver is app's DNS) and reach it.
 * Skipped, with the reason, without root/iptables, a Docker engine, or QEMU and the guest kernel
 * (the VM part alone is skipped when only those are missing).
 *
 * Cleanup (afterAll, whatever happened): the daemon and its task processes, then what this test's
 * tasks and network made, by names derived from their ids: containers `shoal-<task id>`, the Docker
 * network labelled with the network's id, the bridge and VXLAN device (deviceNames), the tasks'
 * namespaces (sandboxName), the VM's taps (tapPrefix), and the host firewall rules naming the bridge
 * or the subnet.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engineForTests, TEST_IMAGE } from '../fixtures/images/engine.ts';
import { guestAssets, guestCmdline } from '../fixtures/vm/guest.ts';
import { hostVipChains, sandboxName } from '../../src/mesh/network-agent.ts';
import { deviceNames } from '../../src/mesh/overlay.ts';
import { tapPrefix } from '../../plugins/vm/network.ts';
import { Daemon, freePort, killTaskProcesses, logsOnFailure, netnsUnavailable, waitFor } from '../harness/index.ts';

const engine = await engineForTests();
const unavailable = netnsUnavailable() ?? (Bun.which('python3') ? null : 'needs python3 for its tasks') ?? (engine.ok ? null : `needs a Docker Engine: ${engine.reason}`);
const guest = guestAssets();
const vmUnavailable = unavailable ?? (typeof guest === 'string' ? guest : !Bun.which('busybox') ? 'needs busybox on the host' : null);

function sh(argv: string[]): { code: number; out: string } {
  const r = Bun.spawnSync(argv, { stdout: 'pipe', stderr: 'pipe' });
  return { code: r.exitCode ?? -1, out: `${r.stdout.toString()}${r.stderr.toString()}`.trim() };
}

/** This host's address towards the outside (the underlay), else loopback. */
function hostAddress(): string {
  const m = /\bsrc (\d+\.\d+\.\d+\.\d+)/.exec(sh(['ip', '-4', 'route', 'get', '192.0.2.200']).out) ?? /\bsrc (\d+\.\d+\.\d+\.\d+)/.exec(sh(['ip', '-4', 'route', 'get', '1.1.1.1']).out);
  return m?.[1] ?? '127.0.0.1';
}

/** A /24 in 10.231.0.0/16 that no route of this namespace covers yet. */
function freeSubnet(): string {
  const routes = sh(['ip', '-4', 'route', 'show']).out;
  for (let i = 0; i < 50; i++) {
    const third = 10 + Math.floor(Math.random() * 240);
    if (!routes.includes(`10.231.${third}.`)) return `10.231.${third}.0/24`;
  }
  throw new Error('no free /24 in 10.231.0.0/16');
}

const WEB = 'mkdir -p /www && echo "web says $SHOAL_TASK_NAME" > /www/index.html && exec httpd -f -p 8000 -h /www';
const PYWEB = 'mkdir -p www && echo "pyweb says $SHOAL_TASK_NAME" > www/index.html && cd www && exec python3 -m http.server 8000';
// One loop per name: once `web` is gone its name may still take the host's resolvers' time to fail
// (our DNS says NXDOMAIN for `web` itself, but a search domain copied from the host's resolv.conf
// sends `web.<domain>` to them first), which must not hold up the fetches from `pyweb`.
const fetchLoop = (name: string) => `while true; do python3 -c '
import socket, urllib.request
print("resolved ${name}", socket.gethostbyname("${name}"), flush=True)
print("got", urllib.request.urlopen("http://${name}:8000/", timeout=2).read().decode().strip(), flush=True)
' 2>&1 | tail -2; sleep 0.3; done`;
const CLIENT = `(${fetchLoop('web')}) & (${fetchLoop('pyweb')}) & wait`;
// busybox-static's wget segfaults in the bare test image (it does without a network too): nc it is.
const CCLIENT = 'while true; do echo "got $(printf \'GET / HTTP/1.0\\r\\n\\r\\n\' | nc -w 2 pyweb 8000 | tail -1)"; sleep 0.3; done';
// The guest serves a page and fetches vclient's by tasks.vclient and by vclient (its VIP), and its
// own through its service's VIP (its resolver is the gateway, from ip=). What vclient resolves to is
// read from ping's first line: busybox's nslookup also asks for the names of the server and of the
// answer (PTR, forwarded to the host's resolvers, which may never answer here).
const vmGet = (what: string, host: string, port: number) => `echo "${what} $(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${host} ${port} | tail -1)"`;
const VMWEB = 'mkdir -p /www && echo "vm says $(hostname)" > /www/index.html && httpd -p 8000 -h /www && '
  + `while true; do ${vmGet('vmgot', 'tasks.vclient', 8001)}; ${vmGet('vmvip', 'vclient', 8001)}; ${vmGet('vmself', 'vmweb', 8000)}; `
  + 'echo "vmresolved $(ping -c 1 -W 1 vclient 2>&1 | head -1)"; sleep 0.5; done';
// The VM's address is given as $1 (its overlay address, from the store); `tasks.vmweb` by name.
const VCLIENT = `while true; do python3 -c '
import socket, sys, urllib.request
print("resolved", socket.gethostbyname("tasks.vmweb"), flush=True)
print("byaddr", urllib.request.urlopen("http://" + sys.argv[1] + ":8000/", timeout=2).read().decode().strip(), flush=True)
print("byname", urllib.request.urlopen("http://tasks.vmweb:8000/", timeout=2).read().decode().strip(), flush=True)
' "$VMADDR" 2>&1 | tail -3; sleep 0.3; done`;
const VSERVE = 'mkdir -p www && echo "vclient says $SHOAL_TASK_NAME" > www/index.html && cd www && exec python3 -m http.server 8001';

describe.skipIf(unavailable !== null)(`containers and VMs on an overlay network${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-ov-rt-'));
  const ip = hostAddress();
  const subnet = freeSubnet();
  const published = freePort(ip === '127.0.0.1' ? '127.0.0.1' : '0.0.0.0');
  let vmPublished = freePort(ip === '127.0.0.1' ? '127.0.0.1' : '0.0.0.0');
  while (vmPublished === published) vmPublished = freePort(ip === '127.0.0.1' ? '127.0.0.1' : '0.0.0.0');
  // --keep-tasks: the last test restarts the daemon under its tasks.
  const d = new Daemon(dir, ['--listen-addr', `${ip}:${freePort(ip)}`, '--mesh-addr', ip, '--keep-tasks']);
  const taskIds = new Set<string>();
  let netId: string | undefined;
  /** Every network this test made, id → subnet (cleanup). */
  const nets = new Map<string, string>();
  const makeNet = async (name: string, sub: string) => {
    await d.ok('network', 'create', '--subnet', sub, name);
    const id = (await d.json<any[]>('/networks')).find((n) => n.Name === name)?.Id as string;
    nets.set(id, sub);
    return id;
  };
  const remember = async () => { for (const t of await d.tasks().catch(() => [])) taskIds.add(t.ID); };
  const logsOf = async (svc: string) => (await d.cli('service', 'logs', svc)).stdout;

  beforeAll(async () => {
    await d.start(true);
    netId = await makeNet('app', subnet);
  }, 60_000);

  afterAll(async () => {
    await remember();
    // Tasks outlive a stop (--keep-tasks): remove the services first, and wait (bounded) for their tasks.
    if (d.proc?.exitCode === null) {
      const names = (await d.json<any[]>('/services').catch(() => [])).map((x) => x.Spec.Name as string);
      if (names.length) await d.cli('service', 'rm', ...names);
      await waitFor('the tasks to end', async () => (await d.tasks()).every((t) => !['running', 'starting', 'preparing'].includes(t.Status.State)), 40_000).catch((e) => console.warn(`overlay-runtimes: ${e}`));
      await remember();
    }
    await d.stop().catch(() => {});
    killTaskProcesses(dir);
    const leftovers: string[] = [];
    for (const id of taskIds) {
      if (sh(['docker', 'ps', '-aq', '--filter', `name=^shoal-${id}$`]).out) {
        sh(['docker', 'rm', '-f', `shoal-${id}`]);
        leftovers.push(`container shoal-${id}`);
      }
      if (sh(['ip', 'netns', 'del', sandboxName(id)]).code === 0) leftovers.push(`netns ${sandboxName(id)}`);
      for (let i = 0; i < 4; i++) if (sh(['ip', 'link', 'del', `${tapPrefix(id)}${i}`]).code === 0) leftovers.push(`tap ${tapPrefix(id)}${i}`);
    }
    for (const [netId, subnet] of nets) {
      for (const n of sh(['docker', 'network', 'ls', '-q', '--filter', `label=io.shoal.network.id=${netId}`]).out.split('\n').filter(Boolean)) {
        sh(['docker', 'network', 'rm', n]);
        leftovers.push(`docker network ${n}`);
      }
      const { bridge, vxlan } = deviceNames(netId);
      for (const dev of [vxlan, bridge]) sh(['ip', 'link', 'del', dev]);
      // The host firewall rules the worker added for this network (they name its bridge or subnet),
      // and the chains of its VIPs.
      for (const [table, chain] of [['filter', 'FORWARD'], ['nat', 'POSTROUTING'], ['nat', 'PREROUTING'], ['filter', 'INPUT']] as const) {
        for (const rule of sh(['iptables', '-w', '-t', table, '-S', chain]).out.split('\n')) {
          if (!rule.startsWith(`-A ${chain} `) || !(rule.includes(` ${bridge} `) || rule.endsWith(` ${bridge}`) || rule.includes(` ${subnet} `))) continue;
          const args = rule.replace(/^-A /, '').match(/"[^"]*"|\S+/g)!.map((a) => a.replace(/^"|"$/g, ''));
          sh(['iptables', '-w', '-t', table, '-D', ...args]);
        }
      }
      const chains = hostVipChains(bridge);
      for (const [table, chain] of [['nat', chains.dnat], ['nat', chains.masq], ['filter', chains.drop]] as const) {
        sh(['iptables', '-w', '-t', table, '-F', chain]);
        sh(['iptables', '-w', '-t', table, '-X', chain]);
      }
    }
    if (leftovers.length) console.warn(`overlay-runtimes: removed after the daemon stopped: ${leftovers.join(', ')}`);
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  test('a container and a process reach each other by name through VIPs; the container\'s published port answers', logsOnFailure(async () => {
    expect(netId).toBeTruthy();
    // sh as PID 1 ignores SIGTERM: a short grace period keeps their removal quick.
    await d.ok('service', 'create', '--detach', '--name', 'web', '--runtime', 'container', '--network', 'app', '--stop-grace-period', '1s',
      '--publish', `published=${published},target=8000`, TEST_IMAGE, 'sh', '-c', WEB);
    await d.ok('service', 'create', '--detach', '--name', 'pyweb', '--network', 'app', '--', 'sh', '-c', PYWEB);
    await d.ok('service', 'create', '--detach', '--name', 'client', '--network', 'app', '--', 'sh', '-c', CLIENT);
    await d.ok('service', 'create', '--detach', '--name', 'cclient', '--runtime', 'container', '--network', 'app', '--stop-grace-period', '1s', TEST_IMAGE, 'sh', '-c', CCLIENT);
    await waitFor('web, pyweb, client and cclient running', async () => {
      await remember();
      for (const s of ['web', 'pyweb', 'client', 'cclient']) if ((await d.running(s)).length !== 1) return false;
      return true;
    }, 90_000);
    const services = await d.json<any[]>('/services');
    const vipOf = (name: string) => (services.find((s) => s.Spec.Name === name).Endpoint.VirtualIPs[0].Addr as string).split('/')[0]!;
    const [web] = await d.running('web');
    const webAddr = (web.NetworksAttachments[0].Addresses[0] as string).split('/')[0]!;
    expect(sh(['docker', 'inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', `shoal-${web.ID}`]).out).toBe(webAddr);

    // A process reaches the container by name, through the VIP (DNAT in the process's namespace).
    const clientLogs = await waitFor('client to fetch a page from the web container by name', async () => {
      const out = await logsOf('client');
      return /got web says web\.1/.test(out) ? out : null;
    }, 60_000);
    expect(clientLogs).toContain(`resolved web ${vipOf('web')}`);

    // A container reaches the process by name (Docker's DNS → ours on the gateway) through the VIP
    // (DNAT written into the container's namespace through its pid).
    await waitFor('cclient to fetch a page from the pyweb process by name', async () => /got pyweb says pyweb\.1/.test(await logsOf('cclient')), 60_000);
    const [cclient] = await d.running('cclient');
    const resolved = sh(['docker', 'exec', `shoal-${cclient.ID}`, 'nslookup', 'pyweb']).out;
    expect(resolved).toContain(vipOf('pyweb'));

    // The container's published port answers on the host (the mesh reaches its overlay address).
    const page = await waitFor('the published port of the web container', async () => {
      const r = sh(['curl', '-s', '--max-time', '2', `http://${ip}:${published}/`]).out;
      return r.includes('web says') ? r : null;
    }, 30_000);
    expect(page).toContain('web says web.1');

    // The last containers leave: their Docker network goes (Docker deletes its rules for the
    // bridge), and the process tasks still on the bridge keep reaching each other (ours stay).
    const { bridge } = deviceNames(netId!);
    await d.ok('service', 'rm', 'web', 'cclient');
    await waitFor('the Docker network of app to go with its last container', () => sh(['docker', 'network', 'ls', '-q', '--filter', `label=io.shoal.network.id=${netId}`]).out === '', 60_000);
    const since = new Date().toISOString();
    const fetched = async () => ((await d.cli('service', 'logs', '--since', since, 'client')).stdout.match(/got pyweb says pyweb\.1/g) ?? []).length;
    await waitFor('client to keep fetching from pyweb once the containers are gone', async () => (await fetched()) >= 3, 30_000);
    expect(sh(['iptables', '-w', '-S', 'FORWARD']).out).toContain(`-i ${bridge} -o ${bridge} -m comment --comment "shoal overlay" -j ACCEPT`);
  }), 180_000);

  test.skipIf(vmUnavailable !== null)(`a VM on the overlay network answers a process at its address and by tasks.<service>, and reaches services through their VIPs${vmUnavailable ? ` (skipped: ${vmUnavailable})` : ''}`, logsOnFailure(async () => {
    const g = guest as Exclude<typeof guest, string>;
    await d.ok('service', 'create', '--detach', '--name', 'vmweb', '--runtime', 'vm', '--network', 'app', '--limit-memory', '256M',
      '--publish', `published=${vmPublished},target=8000`,
      '--kernel', g.kernel, '--initrd', g.initrd, '--cmdline', guestCmdline(VMWEB));
    const [vm] = await waitFor('the vmweb task running', async () => {
      await remember();
      const r = await d.running('vmweb');
      return r.length === 1 ? r : null;
    }, 90_000);
    const vmAddr = (vm.NetworksAttachments[0].Addresses[0] as string).split('/')[0]!;
    await d.ok('service', 'create', '--detach', '--name', 'vclient', '--network', 'app', '-e', `VMADDR=${vmAddr}`, '--', 'sh', '-c', `(${VSERVE}) & (${VCLIENT}) & wait`);
    const out = await waitFor('vclient to fetch the VM\'s page by address and by tasks.vmweb', async () => {
      await remember();
      const o = await logsOf('vclient');
      return /byaddr vm says/.test(o) && /byname vm says/.test(o) ? o : null;
    }, 120_000);
    expect(out).toContain(`resolved ${vmAddr}`);

    // The guest reaches a process by tasks.<service> (DNS on the gateway, given by ip=).
    await waitFor('the VM to fetch vclient\'s page by name', async () => /vmgot vclient says vclient\.1/.test(await logsOf('vmweb')), 60_000);
    // And through VIPs, with no rules of its own: the host's bridge answers for them. Our DNS tells
    // the guest vclient's VIP (a VM is no longer told task addresses where the host path works).
    const services = await d.json<any[]>('/services');
    const vipOf = (name: string) => (services.find((s) => s.Spec.Name === name).Endpoint.VirtualIPs[0].Addr as string).split('/')[0]!;
    const resolved = new RegExp(`vmresolved .*${vipOf('vclient').replaceAll('.', '\\.')}`);
    await waitFor('the VM to resolve vclient to its VIP, fetch vclient\'s page through it, and its own through vmweb\'s', async () => {
      const o = await logsOf('vmweb');
      return resolved.test(o) && /vmvip vclient says vclient\.1/.test(o) && /vmself vm says/.test(o);
    }, 60_000);
    // The VM's published port answers on the host (the mesh reaches its overlay address).
    const page = await waitFor('the published port of the VM', async () => {
      const r = sh(['curl', '-s', '--max-time', '2', `http://${ip}:${vmPublished}/`]).out;
      return r.includes('vm says') ? r : null;
    }, 30_000);
    expect(page).toContain('vm says');
  }), 240_000);

  test('after a daemon restart (--keep-tasks), a container\'s VIP rules follow its services again', logsOnFailure(async () => {
    await d.ok('service', 'create', '--detach', '--name', 'kweb', '--network', 'app', '--', 'sh', '-c', PYWEB.replaceAll('pyweb', 'kweb'));
    await d.ok('service', 'create', '--detach', '--name', 'kc', '--runtime', 'container', '--init', '--network', 'app', TEST_IMAGE, 'sleep', '100000');
    await waitFor('kweb and kc running', async () => {
      await remember();
      return (await d.running('kweb')).length === 1 && (await d.running('kc')).length === 1;
    }, 60_000);
    const [kc] = await d.running('kc');
    const fetchOnce = () => sh(['docker', 'exec', `shoal-${kc.ID}`, 'sh', '-c', 'printf \'GET / HTTP/1.0\\r\\n\\r\\n\' | nc -w 2 kweb 8000 | tail -1']).out;
    await waitFor('kc to fetch from kweb by name', () => fetchOnce().includes('kweb says kweb.1'), 30_000);

    await d.stop();
    await d.start(false);
    await d.ok('service', 'scale', 'kweb=2');
    await waitFor('2 kweb tasks running', async () => {
      await remember();
      return (await d.running('kweb')).length === 2;
    }, 60_000);
    // Both tasks answer through the VIP from inside the container (rules rewritten after the restart).
    const seen = new Set<string>();
    await waitFor('kc to reach both kweb tasks through the VIP', () => {
      const m = /kweb says (kweb\.\d)/.exec(fetchOnce());
      if (m) seen.add(m[1]!);
      return seen.size === 2;
    }, 60_000);
  }), 180_000);

  test('a container whose health check needs another service by name (VIP) becomes running', logsOnFailure(async () => {
    // Its VIP rules go into its namespace once Docker has started it, not once it is running: a
    // health check is run in the container's namespace, and with the rules written only on
    // "running" (after healthy) this one could never pass.
    await d.ok('service', 'create', '--detach', '--name', 'hcweb', '--network', 'app', '--', 'sh', '-c', PYWEB.replaceAll('pyweb', 'hcweb'));
    await waitFor('hcweb running', async () => { await remember(); return (await d.running('hcweb')).length === 1; }, 60_000);
    await d.ok('service', 'create', '--detach', '--name', 'hcc', '--runtime', 'container', '--init', '--network', 'app', '--stop-grace-period', '1s',
      '--health-cmd', 'printf \'GET / HTTP/1.0\\r\\n\\r\\n\' | nc -w 2 hcweb 8000 | grep -q "hcweb says"',
      // The start period: hcweb's python may still be starting on a loaded host (its task is running
      // once exec'd, not once it listens); a check that never passes still fails the task after it.
      '--health-interval', '300ms', '--health-timeout', '3s', '--health-retries', '2', '--health-start-period', '20s', TEST_IMAGE, 'sleep', '100000');
    await waitFor('hcc running (healthy)', async () => {
      await remember();
      const ts = await d.tasks({ service: ['hcc'] });
      const failed = ts.find((t) => ['failed', 'rejected'].includes(t.Status.State));
      if (failed) throw new Error(`hcc task ${failed.ID} ${failed.Status.State}: ${failed.Status.Err ?? failed.Status.Message}`);
      return (await d.running('hcc')).length === 1;
    }, 60_000);
    const [hcc] = await d.running('hcc');
    expect(sh(['docker', 'inspect', '-f', '{{.State.Health.Status}}', `shoal-${hcc.ID}`]).out).toBe('healthy');
  }), 120_000);

  test('a container and a process on two networks resolve and reach a service on their second network by name', logsOnFailure(async () => {
    let sub2 = freeSubnet();
    while (sub2 === subnet) sub2 = freeSubnet();
    await makeNet('app2', sub2);
    await d.ok('service', 'create', '--detach', '--name', 'other', '--network', 'app2', '--', 'sh', '-c', PYWEB.replaceAll('pyweb', 'other'));
    await d.ok('service', 'create', '--detach', '--name', 'pmulti', '--network', 'app', '--network', 'app2', '--', 'sh', '-c', fetchLoop('other'));
    await d.ok('service', 'create', '--detach', '--name', 'cmulti', '--runtime', 'container', '--init', '--network', 'app', '--network', 'app2', TEST_IMAGE, 'sleep', '100000');
    await waitFor('other, pmulti and cmulti running', async () => {
      await remember();
      for (const x of ['other', 'pmulti', 'cmulti']) if ((await d.running(x)).length !== 1) return false;
      return true;
    }, 60_000);
    const [cm] = await d.running('cmulti');
    await waitFor('pmulti to fetch from other by name', async () => /got other says other\.1/.test(await logsOf('pmulti')), 30_000);
    await waitFor('cmulti to fetch from other by name', () => sh(['docker', 'exec', `shoal-${cm.ID}`, 'sh', '-c', 'printf \'GET / HTTP/1.0\\r\\n\\r\\n\' | nc -w 2 other 8000 | tail -1']).out.includes('other says other.1'), 30_000);
    // A task on app alone does not see app2's names (kc, from the previous test, if it ran).
    const [kc] = await d.running('kc');
    if (kc) expect(sh(['docker', 'exec', `shoal-${kc.ID}`, 'nslookup', 'other']).out).not.toContain(sub2.replace(/0\/24$/, ''));
  }), 120_000);
});
