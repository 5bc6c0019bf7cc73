/**
 * The namespace host harness itself: hosts reach each other, isolation / partitions / one-way drops
 * stop exactly what they should, healing restores it, extra namespaces stay off the bridge, and
 * dispose leaves nothing in the kernel.
 * Needs root; skips with the reason without it, unless SHOAL_REQUIRE_NETNS=1 (CI) makes that a failure.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { disposeAllHosts, type NetHost, NetnsHosts, requireNetns, sweepStale } from './hosts.ts';
import { reaches, tcpEcho as echoOn, udpListener, udpSend } from './probes.ts';
import { waitFor } from './wait.ts';

const unavailable = requireNetns();

const tcpEcho = (net: NetnsHosts, host: NetHost, port: number) => echoOn(net, host, host.ip, port);

const T = 60_000; // a bound for `bun test` without npm's --timeout, not an expectation

describe.skipIf(unavailable !== null)(`network namespace hosts${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  // A test that times out never reaches its own `await using` cleanup.
  afterEach(() => disposeAllHosts());

  test('hosts reach each other; isolate, partition and heal cut and restore exactly what they say; dispose leaves nothing', async () => {
    sweepStale();
    let net!: NetnsHosts;
    {
      await using n = await NetnsHosts.create({ hosts: 3 });
      net = n;
      const [a, b, c] = n.hosts as [NetHost, NetHost, NetHost];
      expect([a.ip, b.ip, c.ip]).toEqual(['10.77.0.2', '10.77.0.3', '10.77.0.4']);
      await tcpEcho(n, a, 7000);
      await tcpEcho(n, c, 7000);

      await waitFor('b reaches a', () => reaches(n, b, a, 7000));
      expect(await reaches(n, c, a, 7000)).toBe(true);

      // Symmetric: b's port down cuts b from everyone, and only b.
      n.isolate(b);
      expect(await reaches(n, b, a, 7000)).toBe(false);
      expect(await reaches(n, a, c, 7000)).toBe(true);
      n.heal();
      await waitFor('b reaches a after healing', () => reaches(n, b, a, 7000));

      // A partition {a} | {b, c}: nothing crosses, each side still talks within itself.
      n.partition([a], [b, c]);
      expect(await reaches(n, b, a, 7000)).toBe(false);
      expect(await reaches(n, a, c, 7000)).toBe(false);
      expect(await reaches(n, b, c, 7000)).toBe(true);
      n.heal();
      await waitFor('b reaches a after healing', () => reaches(n, b, a, 7000));
      await waitFor('a reaches c after healing', () => reaches(n, a, c, 7000));
    }
    expect(net.leftovers()).toEqual([]);
  }, T);

  test('a one-way drop loses b → a and keeps a → b', async () => {
    await using n = await NetnsHosts.create({ hosts: 3 });
    const [a, b, c] = n.hosts as [NetHost, NetHost, NetHost];
    const atA = await udpListener(n, a, 7001);
    const atB = await udpListener(n, b, 7001);
    n.dropOneWay(b, a);
    // b's datagrams go first, c's marker after it: when the marker is in, b's would have been too.
    await udpSend(n, b, a, 7001, 'from-b-1', 'from-b-2');
    await udpSend(n, c, a, 7001, 'marker-from-c');
    await waitFor('the marker at a', () => atA.includes('marker-from-c'));
    expect(atA.filter((l) => l.startsWith('from-b'))).toEqual([]);
    await udpSend(n, a, b, 7001, 'from-a');
    await waitFor('a → b still flows', () => atB.includes('from-a'));

    n.heal();
    await udpSend(n, b, a, 7001, 'from-b-healed');
    await waitFor('b → a after healing', () => atA.includes('from-b-healed'));
  }, T);

  test('dispose cleans up after a failing test, including processes still running inside', async () => {
    let net!: NetnsHosts;
    let pid = 0;
    await expect(
      (async () => {
        await using n = await NetnsHosts.create({ hosts: 2 });
        net = n;
        const p = n.spawn(n.hosts[0]!, ['sleep', '1000']);
        pid = p.pid;
        throw new Error('the test failed');
      })(),
    ).rejects.toThrow('the test failed');
    expect(net.leftovers()).toEqual([]);
    await waitFor('the process inside to be gone', () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    });
  }, T);

  test('an extra namespace is off the bridge with lo alone, and goes at dispose with what runs in it', async () => {
    let net!: NetnsHosts;
    let pid = 0;
    let ns = '';
    {
      await using n = await NetnsHosts.create({ hosts: 1 });
      net = n;
      ns = n.netns('task1');
      expect(() => n.netns('task1')).toThrow('exists already');
      expect(() => n.netns('Bad name')).toThrow('netns name "Bad name"');
      const links = JSON.parse((await n.run(ns, ['ip', '-j', 'link', 'show'])).stdout) as { ifname: string }[];
      expect(links.map((l) => l.ifname)).toEqual(['lo']);
      pid = n.spawn(ns, ['sleep', '1000']).pid;
    }
    expect(net.leftovers()).toEqual([]);
    expect(Bun.spawnSync(['ip', 'netns', 'list']).stdout.toString()).not.toContain(ns);
    await waitFor('the process inside to be gone', () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    });
  }, T);

  test('two harnesses at once use the same addresses without seeing each other', async () => {
    await using one = await NetnsHosts.create({ hosts: 2 });
    await using two = await NetnsHosts.create({ hosts: 2 });
    expect(one.hosts[0]!.ip).toBe(two.hosts[0]!.ip);
    expect(one.bridge).not.toBe(two.bridge);
    await tcpEcho(one, one.hosts[0]!, 7002);
    await waitFor('one: h1 reaches h0', () => reaches(one, one.hosts[1]!, one.hosts[0]!, 7002));
    expect(await reaches(two, two.hosts[1]!, two.hosts[0]!, 7002)).toBe(false);
  }, T);
});
