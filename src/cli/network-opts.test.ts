import { describe, expect, test } from 'bun:test';
import { parseArgs } from './args.ts';
import { networkTable } from './network.ts';
import { parseNetwork } from './network-opts.ts';
import { applyServiceUpdate, buildServiceSpec, CREATE_OPTIONS, UPDATE_OPTIONS } from './service-opts.ts';

const known = [{ Id: 'aaaa1111', Name: 'front' }, { Id: 'bbbb2222', Name: 'back' }];

describe('service --network flags', () => {
  test('create: names, long form with aliases; bad values name the flag', () => {
    const spec = buildServiceSpec(parseArgs(['--runtime', 'mock', '--network', 'front', '--network', 'name=back,alias=db,alias=pg'], CREATE_OPTIONS, { stopAtPositional: true }), {});
    expect(spec.TaskTemplate.Networks).toEqual([{ Target: 'front' }, { Target: 'back', Aliases: ['db', 'pg'] }]);
    expect(() => parseNetwork('name=x,colour=red')).toThrow('--network');
    expect(() => parseNetwork('alias=x')).toThrow('name=NETWORK is required');
  });

  test('update: --network-rm by name or ID removes the ID the spec holds; --network-add appends once', () => {
    const cur = { Name: 's', TaskTemplate: { Runtime: 'mock', Networks: [{ Target: 'aaaa1111' }, { Target: 'bbbb2222' }] } };
    const upd = (...argv: string[]) => applyServiceUpdate(cur as any, parseArgs(argv, UPDATE_OPTIONS), {}, known).TaskTemplate.Networks;
    expect(upd('--network-rm', 'front')).toEqual([{ Target: 'bbbb2222' }]);
    expect(upd('--network-rm', 'bbbb2222', '--network-add', 'other')).toEqual([{ Target: 'aaaa1111' }, { Target: 'other' }]);
    expect(upd('--network-add', 'front')).toEqual([{ Target: 'bbbb2222' }, { Target: 'front' }]);
    expect(upd('--replicas', '2')).toEqual(cur.TaskTemplate.Networks);
  });

  test('network ls table', () => {
    const out = networkTable([
      { Id: 'abcdef0123456789', Name: 'front', Driver: 'overlay', Scope: 'swarm', IPAM: { Config: [{ Subnet: '10.0.1.0/24' }] }, Labels: {}, Options: {} },
      { Id: '0123456789abcdef', Name: 'new', Driver: 'overlay', Scope: 'swarm', IPAM: { Config: [] }, Labels: {}, Options: {} },
    ]);
    expect(out).toBe(
      'NETWORK ID     NAME    DRIVER    SCOPE   SUBNET\n' +
      'abcdef012345   front   overlay   swarm   10.0.1.0/24\n' +
      '0123456789ab   new     overlay   swarm   (allocating)\n',
    );
  });
});
