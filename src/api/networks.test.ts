import { beforeEach, describe, expect, test } from 'bun:test';
import { Allocator } from '../manager/allocator/index.ts';
import { settle } from '../manager/testkit.ts';
import { proc, type TestApi, testApi } from './test-helper.ts';

let api: TestApi;
beforeEach(async () => {
  api = testApi();
  await api.init();
});

const create = (body: unknown) => api.call('POST', '/networks/create', body);

describe('networks', () => {
  test('create, inspect by name/id/prefix, list with filters, in Docker shape', async () => {
    const r = await create({ Name: 'front', Driver: 'overlay', Labels: { team: 'a' }, IPAM: { Config: [{ Subnet: '10.9.0.0/24' }] } });
    expect(r.status).toBe(201);
    const id = r.json.Id as string;
    for (const ref of ['front', id, id.slice(0, 5)]) expect((await api.call('GET', `/v1.47/networks/${ref}`)).json.Id).toBe(id);
    const n = (await api.call('GET', '/networks/front')).json;
    expect(n).toMatchObject({ Name: 'front', Scope: 'swarm', Driver: 'overlay', IPAM: { Driver: 'default', Config: [{ Subnet: '10.9.0.0/24' }] }, Labels: { team: 'a' }, Ingress: false });
    expect((await create({ Name: 'back' })).status).toBe(201);
    expect((await api.call('GET', '/networks')).json.map((x: any) => x.Name)).toEqual(['back', 'front']);
    expect((await api.call('GET', `/networks?filters=${encodeURIComponent('{"label":["team=a"]}')}`)).json.map((x: any) => x.Name)).toEqual(['front']);
    expect((await api.call('GET', '/networks/nope')).status).toBe(404);
  });

  test('the allocator fills in the subnet, gateway and VXLAN id of a network created without a subnet', async () => {
    const alloc = new Allocator({ store: api.deps.store });
    alloc.start();
    try {
      await create({ Name: 'auto' });
      await settle(api.deps.store);
      expect((await api.call('GET', '/networks/auto')).json).toMatchObject({
        IPAM: { Config: [{ Subnet: '10.0.1.0/24', Gateway: '10.0.1.1' }] },
        Options: { 'com.docker.network.driver.overlay.vxlanid_list': '4097' },
      });
    } finally {
      await alloc.stop();
    }
  });

  test('bad input is a 400 naming the field; a taken name is a 409', async () => {
    await create({ Name: 'one', IPAM: { Config: [{ Subnet: '10.5.0.0/16' }] } });
    const cases: [unknown, string][] = [
      [{}, 'Name: expected a string'],
      [{ Name: 'a b' }, 'Name: expected letters'],
      [{ Name: 'x', Driver: 'bridge' }, 'Driver: "bridge" is not supported'],
      [{ Name: 'x', IPAM: { Config: [{ Subnet: '10.1.0.0' }] } }, 'IPAM.Config[0].Subnet: "10.1.0.0" is not in CIDR notation'],
      [{ Name: 'x', IPAM: { Config: [{ Subnet: '10.1.0.1/24' }] } }, 'IPAM.Config[0].Subnet: "10.1.0.1/24" has host bits set'],
      [{ Name: 'x', IPAM: { Config: [{ Subnet: '10.1.0.0/30' }] } }, 'IPAM.Config[0].Subnet: 10.1.0.0/30 is too small'],
      [{ Name: 'x', IPAM: { Config: [{ Subnet: '10.5.3.0/24' }] } }, 'IPAM.Config[0].Subnet: 10.5.3.0/24 overlaps 10.5.0.0/16 of network one'],
      [{ Name: 'x', IPAM: { Config: [{ Subnet: '127.1.0.0/24' }] } }, 'overlaps the reserved range 127.0.0.0/8'],
      [{ Name: 'x', IPAM: { Config: [{ Subnet: '10.6.0.0/24', Gateway: '10.7.0.1' }] } }, 'IPAM.Config[0].Gateway: 10.7.0.1 is not a host address of 10.6.0.0/24'],
      [{ Name: 'x', IPAM: { Config: [{ Subnet: '10.6.0.0/24' }, { Subnet: '10.8.0.0/24' }] } }, 'IPAM.Config: give at most one subnet'],
    ];
    for (const [body, msg] of cases) {
      const r = await create(body);
      expect({ status: r.status, msg: r.json.message }).toEqual({ status: 400, msg: expect.stringContaining(msg) });
    }
    const dup = await create({ Name: 'one' });
    expect(dup.status).toBe(409);
    expect(dup.json.message).toBe('network with name one already exists');
  });

  test('services name networks by name; targets become IDs; an unknown one is a 404 naming it', async () => {
    const id = (await create({ Name: 'net1' })).json.Id;
    const ok = await api.call('POST', '/services/create', proc('web', { TaskTemplate: { ...proc('web').TaskTemplate, Networks: [{ Target: 'net1', Aliases: ['w'] }] } }));
    expect(ok.status).toBe(201);
    expect((await api.call('GET', '/services/web')).json.Spec.TaskTemplate.Networks).toEqual([{ Target: id, Aliases: ['w'] }]);
    const old = await api.call('POST', '/services/create', proc('old', { Networks: [{ Target: id.slice(0, 6) }] }));
    expect(old.status).toBe(201);
    expect((await api.call('GET', '/services/old')).json.Spec.TaskTemplate.Networks).toEqual([{ Target: id }]);
    const bad = await api.call('POST', '/services/create', proc('x', { TaskTemplate: { ...proc('x').TaskTemplate, Networks: [{ Target: 'nope' }] } }));
    expect(bad.status).toBe(404);
    expect(bad.json.message).toContain('TaskTemplate.Networks[0].Target: network nope not found');
    const twice = await api.call('POST', '/services/create', proc('y', { TaskTemplate: { ...proc('y').TaskTemplate, Networks: [{ Target: 'net1' }, { Target: id }] } }));
    expect(twice.status).toBe(400);
  });

  test('removing a network that services use is refused naming them; once they are gone it goes', async () => {
    await create({ Name: 'shared' });
    for (const name of ['b-svc', 'a-svc']) await api.call('POST', '/services/create', proc(name, { TaskTemplate: { ...proc(name).TaskTemplate, Networks: [{ Target: 'shared' }] } }));
    const r = await api.call('DELETE', '/networks/shared');
    expect(r.status).toBe(409);
    expect(r.json.message).toContain('network shared is in use by services a-svc, b-svc');
    for (const name of ['a-svc', 'b-svc']) expect((await api.call('DELETE', `/services/${name}`)).status).toBe(200);
    expect((await api.call('DELETE', '/networks/shared')).status).toBe(204);
    expect((await api.call('GET', '/networks/shared')).status).toBe(404);
    expect((await api.call('DELETE', '/networks/shared')).status).toBe(404);
  });

  test('a network held only by tasks of removed services is removed once they stop (docker stack rm)', async () => {
    const id = (await create({ Name: 'drain' })).json.Id;
    const svc = await api.call('POST', '/services/create', proc('gone', { TaskTemplate: { ...proc('gone').TaskTemplate, Networks: [{ Target: 'drain' }] } }));
    const net = { ID: id, Spec: { Name: 'drain' }, DriverState: { Name: 'overlay', Options: {} }, IPAMOptions: { Configs: [] } };
    const t = await api.addTask({ ServiceID: svc.json.ID, NetworksAttachments: [{ Network: net, Addresses: ['10.0.9.2/24'] }] });
    expect((await api.call('DELETE', '/services/gone')).status).toBe(200);
    let answered = false;
    const pending = api.call('DELETE', '/networks/drain').finally(() => (answered = true));
    await api.deps.store.sync();
    expect(answered).toBe(false);
    const { store } = api.deps;
    await store.update((tx) => tx.update('tasks', { ...store.get('tasks', t.ID)!, DesiredState: 'shutdown', Status: { ...t.Status, State: 'shutdown' } }));
    expect((await pending).status).toBe(204);
  });
});

describe('the ingress network', () => {
  const ctr = (name: string, extra: Record<string, unknown> = {}) => ({
    Name: name, TaskTemplate: { ContainerSpec: { Image: 'busybox' }, ...extra }, EndpointSpec: { Ports: [{ TargetPort: 80, PublishedPort: 8080 }] },
  });

  test('a container service publishing a port joins "ingress", made once (10.0.0.0/24); processes and host mode do not', async () => {
    expect((await api.call('POST', '/services/create', ctr('web'))).status).toBe(201);
    const ingress = (await api.call('GET', '/networks/ingress')).json;
    expect(ingress).toMatchObject({ Name: 'ingress', Ingress: true, IPAM: { Config: [{ Subnet: '10.0.0.0/24' }] } });
    expect((await api.call('GET', '/services/web')).json.Spec.TaskTemplate.Networks).toEqual([{ Target: ingress.Id }]);
    // A second one reuses it.
    expect((await api.call('POST', '/services/create', { ...ctr('web2'), EndpointSpec: { Ports: [{ TargetPort: 80, PublishedPort: 8081 }] } })).status).toBe(201);
    expect((await api.call('GET', '/networks')).json.filter((n: any) => n.Name === 'ingress')).toHaveLength(1);
    // A process on the host's network, a host-mode port, a service naming its own network: no ingress.
    const p = { ...proc('p'), EndpointSpec: { Ports: [{ TargetPort: 80, PublishedPort: 8082 }] } };
    expect((await api.call('POST', '/services/create', p)).status).toBe(201);
    expect((await api.call('GET', '/services/p')).json.Spec.TaskTemplate.Networks).toBeUndefined();
    const host = { ...ctr('h'), EndpointSpec: { Ports: [{ TargetPort: 80, PublishedPort: 8083, PublishMode: 'host' }] } };
    expect((await api.call('POST', '/services/create', host)).status).toBe(201);
    expect((await api.call('GET', '/services/h')).json.Spec.TaskTemplate.Networks).toBeUndefined();
    expect((await create({ Name: 'app' })).status).toBe(201);
    expect((await api.call('POST', '/services/create', { ...ctr('own', { Networks: [{ Target: 'app' }] }), EndpointSpec: { Ports: [{ TargetPort: 80, PublishedPort: 8084 }] } })).status).toBe(201);
    const app = (await api.call('GET', '/networks/app')).json.Id;
    expect((await api.call('GET', '/services/own')).json.Spec.TaskTemplate.Networks).toEqual([{ Target: app }]);
  });

  test('a port published later by an update joins it too; --ingress networks are refused with the reason', async () => {
    expect((await api.call('POST', '/services/create', { Name: 'late', TaskTemplate: { ContainerSpec: { Image: 'busybox' } } })).status).toBe(201);
    expect((await api.call('GET', '/networks')).json.filter((n: any) => n.Name === 'ingress')).toHaveLength(0);
    const cur = (await api.call('GET', '/services/late')).json;
    const r = await api.call('POST', `/services/late/update?version=${cur.Version.Index}`, { ...cur.Spec, EndpointSpec: { Ports: [{ TargetPort: 80, PublishedPort: 8090 }] } });
    expect(r.status).toBe(200);
    expect((await api.call('GET', '/services/late')).json.Spec.TaskTemplate.Networks).toHaveLength(1);
    const refused = await create({ Name: 'my-ingress', Ingress: true });
    expect(refused.status).toBe(400);
    expect(refused.json.message).toContain('shoal makes the ingress network itself');
  });
});
