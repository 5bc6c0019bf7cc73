/** Overlay networks → engine bodies, and the network bookkeeping against a fake engine; no engine needed. */
import { describe, expect, test } from 'bun:test';
import type Docker from 'dockerode';
import type { TaskNetwork, TaskNetworkAttachment } from '../../src/executor/contract.ts';
import type { Task } from '../../src/types/index.ts';
import {
  dockerNetworkName, ensureNetwork, LABEL_NETWORK, mismatch, networkCreateFields, networkCreateOptions, releaseNetwork, sweepOwnNetworks, withNetworks,
} from './network.ts';
import { createOptions } from './spec.ts';

const att = (o: Partial<TaskNetworkAttachment> = {}): TaskNetworkAttachment => ({
  networkId: 'k3x9q2w8e7r6t5y4', name: 'app', bridge: 'shb-1a2b3c4d', subnet: '10.0.1.0/24', gateway: '10.0.1.1',
  address: '10.0.1.5/24', mac: '02:42:0a:00:01:05', mtu: 1450, ...o,
});
const second = att({ networkId: 'zz8877665544332211', name: 'db', bridge: 'shb-99887766', subnet: '10.0.2.0/24', gateway: '10.0.2.1', address: '10.0.2.7/24', mac: '02:42:0a:00:02:07' });
const task: Task = {
  ID: 't1', Version: { Index: 1 }, CreatedAt: '', UpdatedAt: '', ServiceID: 's1', Slot: 1, NodeID: 'n1',
  Spec: { ContainerSpec: { Image: 'busybox' } }, Status: { Timestamp: '', State: 'assigned', Message: '' }, DesiredState: 'running',
};

describe('overlay networks → engine bodies', () => {
  test('the Docker network: named after the network, bound to its bridge, its subnet, gateway and MTU, labelled', () => {
    expect(dockerNetworkName(att())).toBe('shoal-app-k3x9q2w8e7r6');
    expect(dockerNetworkName(att({ name: 'we/ird', networkId: 'a-b' }))).toBe('shoal-we_ird-ab');
    expect(networkCreateOptions(att())).toEqual({
      Name: 'shoal-app-k3x9q2w8e7r6', CheckDuplicate: true, Driver: 'bridge',
      IPAM: { Driver: 'default', Config: [{ Subnet: '10.0.1.0/24', Gateway: '10.0.1.1' }] },
      Options: { 'com.docker.network.bridge.name': 'shb-1a2b3c4d', 'com.docker.network.driver.mtu': '1450' },
      Labels: { [LABEL_NETWORK]: 'k3x9q2w8e7r6t5y4', 'io.shoal.network.name': 'app' },
    });
  });

  test('the container: on the first network at its address and MAC, resolvers from the context', () => {
    const net: TaskNetwork = { attachments: [att(), second], dns: ['10.0.1.1'] };
    expect(networkCreateFields(net)).toEqual({
      MacAddress: '02:42:0a:00:01:05',
      NetworkingConfig: { EndpointsConfig: { 'shoal-app-k3x9q2w8e7r6': { IPAMConfig: { IPv4Address: '10.0.1.5' }, MacAddress: '02:42:0a:00:01:05' } as Docker.EndpointSettings } },
      HostConfig: { NetworkMode: 'shoal-app-k3x9q2w8e7r6', Dns: ['10.0.1.1'] },
    });
    const o = createOptions(task, {}, net);
    expect(o.HostConfig).toMatchObject({ NetworkMode: 'shoal-app-k3x9q2w8e7r6', Dns: ['10.0.1.1'], RestartPolicy: { Name: 'no' } });
    expect(Object.keys(o.NetworkingConfig!.EndpointsConfig!)).toEqual(['shoal-app-k3x9q2w8e7r6']);
    expect(o.MacAddress).toBe('02:42:0a:00:01:05');
  });

  test('without networks the body is as before', () => {
    for (const o of [createOptions(task), createOptions(task, {}, { attachments: [], dns: [] })]) {
      expect(o.HostConfig!.NetworkMode).toBeUndefined();
      expect(o.HostConfig!.Dns).toBeUndefined();
      expect(o.NetworkingConfig).toBeUndefined();
      expect(o.MacAddress).toBeUndefined();
    }
  });

  test('an existing network fits only with the same driver, subnet, gateway and bridge', () => {
    const info = (o: object = {}) => ({
      Driver: 'bridge', IPAM: { Config: [{ Subnet: '10.0.1.0/24', Gateway: '10.0.1.1' }] }, Options: { 'com.docker.network.bridge.name': 'shb-1a2b3c4d' }, ...o,
    }) as unknown as Docker.NetworkInspectInfo;
    expect(mismatch(info(), att())).toBeUndefined();
    expect(mismatch(info({ IPAM: { Config: [{ Subnet: '10.0.9.0/24' }] } }), att())).toBe('subnet 10.0.9.0/24, not 10.0.1.0/24');
    expect(mismatch(info({ IPAM: { Config: [{ Subnet: '10.0.1.0/24', Gateway: '10.0.1.254' }] } }), att())).toBe('gateway 10.0.1.254, not 10.0.1.1');
    expect(mismatch(info({ Options: {} }), att())).toBe('bridge (none), not shb-1a2b3c4d');
    expect(mismatch(info({ Driver: 'macvlan' }), att())).toBe('driver macvlan, not bridge');
  });
});

/** An engine with networks only: create (409 on a taken name), inspect, remove ("active endpoints" when used). */
function fakeEngine() {
  const nets = new Map<string, Docker.NetworkInspectInfo>();
  const calls: string[] = [];
  const err = (statusCode: number, message: string) => Object.assign(new Error(message), { statusCode, json: { message } });
  const docker = {
    async listNetworks(o: { filters?: { label?: string[] } } = {}) {
      const want = o.filters?.label ?? [];
      // As the engine's list: no Containers.
      return [...nets.values()].filter((n) => want.every((l) => { const [k, v] = l.split('='); return n.Labels?.[k!] === v; }))
        .map((n) => ({ ...n, Containers: {} }));
    },
    async createNetwork(o: Docker.NetworkCreateOptions) {
      calls.push(`create ${o.Name}`);
      await Bun.sleep(0);
      if (nets.has(o.Name)) throw err(409, `network with name ${o.Name} already exists`);
      nets.set(o.Name, { Name: o.Name, Id: `id-${o.Name}`, Driver: o.Driver!, IPAM: o.IPAM, Options: o.Options, Labels: o.Labels, Containers: {} } as Docker.NetworkInspectInfo);
    },
    getNetwork(name: string) {
      const find = () => nets.get(name) ?? [...nets.values()].find((n) => n.Id === name);
      return {
        async inspect() { const n = find(); if (!n) throw err(404, `network ${name} not found`); return n; },
        async remove() {
          const n = find();
          calls.push(`remove ${n?.Name ?? name}`);
          if (!n) throw err(404, `network ${name} not found`);
          if (Object.keys(n.Containers ?? {}).length) throw err(403, `error while removing network: network ${n.Name} id ${n.Id} has active endpoints`);
          nets.delete(n.Name);
        },
      };
    },
  };
  return { docker: docker as unknown as Docker, nets, calls };
}

describe('Docker network bookkeeping (fake engine)', () => {
  const log = () => {};
  test('racing creators: one creates, the other takes the existing network', async () => {
    const e = fakeEngine();
    await Promise.all([ensureNetwork(e.docker, att(), log), ensureNetwork(e.docker, att(), log)]);
    expect(e.nets.size).toBe(1);
    expect(e.calls.filter((c) => c.startsWith('create'))).toHaveLength(2);
    await ensureNetwork(e.docker, att(), log);
    expect(e.calls).toHaveLength(2); // already there: nothing to do
  });

  test('a stale network of another subnet: replaced when unused, a clear error when in use', async () => {
    const e = fakeEngine();
    await ensureNetwork(e.docker, att({ subnet: '10.0.9.0/24', gateway: '10.0.9.1' }), log);
    await ensureNetwork(e.docker, att(), log);
    expect(e.nets.get('shoal-app-k3x9q2w8e7r6')!.IPAM!.Config).toEqual([{ Subnet: '10.0.1.0/24', Gateway: '10.0.1.1' }]);
    e.nets.get('shoal-app-k3x9q2w8e7r6')!.Containers = { c1: {} as Docker.NetworkContainer };
    await expect(ensureNetwork(e.docker, att({ subnet: '10.0.3.0/24', gateway: '10.0.3.1' }), log)).rejects.toThrow(
      'Docker network shoal-app-k3x9q2w8e7r6 exists with subnet 10.0.1.0/24, not 10.0.3.0/24 and is in use',
    );
  });

  test('release: only an unused network of ours; active endpoints and absence are no errors', async () => {
    const e = fakeEngine();
    await ensureNetwork(e.docker, att(), log);
    e.nets.set('other', { Name: 'other', Id: 'id-other', Labels: {}, Containers: {} } as unknown as Docker.NetworkInspectInfo);
    await releaseNetwork(e.docker, 'other', log);
    expect(e.nets.has('other')).toBe(true);
    e.nets.get('shoal-app-k3x9q2w8e7r6')!.Containers = { c1: {} as Docker.NetworkContainer };
    await releaseNetwork(e.docker, 'shoal-app-k3x9q2w8e7r6', log);
    expect(e.nets.size).toBe(2);
    e.nets.get('shoal-app-k3x9q2w8e7r6')!.Containers = {};
    await releaseNetwork(e.docker, 'shoal-app-k3x9q2w8e7r6', log);
    await releaseNetwork(e.docker, 'shoal-app-k3x9q2w8e7r6', log);
    expect([...e.nets.keys()]).toEqual(['other']);
  });

  test('a leftover of another run holding the subnet: removed when empty; in use, or not shoal\'s, a clear error', async () => {
    const e = fakeEngine();
    const logs: string[] = [];
    const put = (name: string, subnet: string, labels: Record<string, string>, containers = {}) =>
      e.nets.set(name, { Name: name, Id: `id-${name}`, Driver: 'bridge', IPAM: { Config: [{ Subnet: subnet }] }, Labels: labels, Containers: containers } as unknown as Docker.NetworkInspectInfo);
    put('shoal-old-aaaa', '10.0.1.0/24', { [LABEL_NETWORK]: 'old', 'io.shoal.node.id': 'n0' });
    put('shoal-far-bbbb', '10.0.2.0/24', { [LABEL_NETWORK]: 'far' });
    await ensureNetwork(e.docker, att(), (m) => logs.push(m), undefined, 'n1');
    expect([...e.nets.keys()].sort()).toEqual(['shoal-app-k3x9q2w8e7r6', 'shoal-far-bbbb']);
    expect(e.nets.get('shoal-app-k3x9q2w8e7r6')!.Labels).toMatchObject({ 'io.shoal.node.id': 'n1' });
    expect(logs[0]).toBe('removed Docker network shoal-old-aaaa (subnet 10.0.1.0/24, node n0): a leftover holding the subnet of shoal-app-k3x9q2w8e7r6');

    const f = fakeEngine();
    f.nets.set('shoal-old-aaaa', { Name: 'shoal-old-aaaa', Id: 'id-old', IPAM: { Config: [{ Subnet: '10.0.0.0/16' }] }, Labels: { [LABEL_NETWORK]: 'old' }, Containers: { c: { Name: 'web.1' } } } as unknown as Docker.NetworkInspectInfo);
    await expect(ensureNetwork(f.docker, att(), log)).rejects.toThrow('subnet 10.0.1.0/24 is held by Docker network shoal-old-aaaa (left by another shoal run), which containers web.1 still use');
    f.nets.set('shoal-old-aaaa', { Name: 'mine', Id: 'id-mine', IPAM: { Config: [{ Subnet: '10.0.1.128/25' }] }, Labels: {}, Containers: {} } as unknown as Docker.NetworkInspectInfo);
    await expect(ensureNetwork(f.docker, att(), log)).rejects.toThrow('subnet 10.0.1.0/24 overlaps Docker network mine (10.0.1.128/25), which shoal did not make');
  });

  test('sweep at start: the empty networks this node made go; in use, another node\'s, or not shoal\'s stay', async () => {
    const e = fakeEngine();
    const put = (name: string, labels: Record<string, string>, containers = {}) =>
      e.nets.set(name, { Name: name, Id: `id-${name}`, Labels: labels, Containers: containers } as unknown as Docker.NetworkInspectInfo);
    put('mine-empty', { [LABEL_NETWORK]: 'a', 'io.shoal.node.id': 'n1' });
    put('mine-used', { [LABEL_NETWORK]: 'b', 'io.shoal.node.id': 'n1' }, { c: {} });
    put('theirs', { [LABEL_NETWORK]: 'c', 'io.shoal.node.id': 'n2' });
    put('user', { 'io.shoal.node.id': 'n1' });
    const logs: string[] = [];
    expect(await sweepOwnNetworks(e.docker, 'n1', (m) => logs.push(m))).toEqual(['mine-empty']);
    expect([...e.nets.keys()].sort()).toEqual(['mine-used', 'theirs', 'user']);
    expect(logs).toEqual(["removed Docker networks left by this node's last run: mine-empty"]);
    expect(await sweepOwnNetworks({ listNetworks: () => Promise.reject(new Error('engine down')) } as unknown as Docker, 'n1', (m) => logs.push(m))).toEqual([]);
    expect(logs[1]).toContain('engine down');
  });

  test('withNetworks: calls on a shared network never interleave; disjoint ones run together', async () => {
    const order: string[] = [];
    const step = (id: string, names: string[]) => withNetworks(names, async () => {
      order.push(`${id}+`);
      await Bun.sleep(5);
      order.push(`${id}-`);
    });
    await Promise.all([step('a', ['x', 'y']), step('b', ['y', 'x']), step('c', ['z'])]);
    expect(order.indexOf('b+')).toBeGreaterThan(order.indexOf('a-'));
    expect(order.indexOf('c+')).toBeLessThan(order.indexOf('a-'));
    // A failure releases the locks.
    await expect(withNetworks(['x'], () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await withNetworks(['x'], async () => 'free')).toBe('free');
  });
});
