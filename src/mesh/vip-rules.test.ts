/** The text of the VIP rules: a task's namespace, and the host path on a network's bridge. */
import { describe, expect, test } from 'bun:test';
import type { NetTable } from '../manager/dispatcher/protocol.ts';
import { deviceNames } from './overlay.ts';
import { hostVipChains, hostVipJumps, hostVipRules, hostVips, taskVipRules } from './vip-rules.ts';

const NET = { id: 'net-a', name: 'a', subnet: '10.7.0.0/24', gateway: '10.7.0.1', vni: 4200 };
const table = (services: NetTable['services']): NetTable => ({ networks: [NET], services });

describe('host VIP rules (text)', () => {
  const bridge = deviceNames(NET.id).bridge;
  const { dnat, masq, drop } = hostVipChains(bridge);

  test('chains named after the bridge, within iptables\' 28 characters', () => {
    expect(dnat).toBe(`SHOAL-HVIP-${bridge.slice(4)}`);
    for (const c of [dnat, masq, drop]) expect(c.length).toBeLessThanOrEqual(28);
    expect(new Set([dnat, masq, drop]).size).toBe(3);
  });

  test('DNAT of each VIP spread over its service\'s tasks on the network; hairpin masquerade per task; drop of what is left', () => {
    const t = table([
      { id: 's1', name: 'web', mode: 'vip', vips: [{ net: NET.id, addr: '10.7.0.2' }, { net: 'other', addr: '10.8.0.2' }],
        tasks: [{ net: NET.id, addr: '10.7.0.9' }, { net: NET.id, addr: '10.7.0.10' }, { net: NET.id, addr: '10.7.0.11' }, { net: 'other', addr: '10.8.0.9' }] },
      { id: 's2', name: 'idle', mode: 'vip', vips: [{ net: NET.id, addr: '10.7.0.3' }], tasks: [] },
      { id: 's3', name: 'rr', mode: 'dnsrr', vips: [], tasks: [{ net: NET.id, addr: '10.7.0.20' }] },
    ]);
    expect(hostVipRules(t, NET.id, bridge)).toBe([
      '*nat',
      `:${dnat} - [0:0]`,
      `:${masq} - [0:0]`,
      `-A ${dnat} -d 10.7.0.2/32 -m statistic --mode random --probability 0.3333333333 -j DNAT --to-destination 10.7.0.9`,
      `-A ${dnat} -d 10.7.0.2/32 -m statistic --mode random --probability 0.5000000000 -j DNAT --to-destination 10.7.0.10`,
      `-A ${dnat} -d 10.7.0.2/32 -j DNAT --to-destination 10.7.0.11`,
      `-A ${masq} -s 10.7.0.10/32 -d 10.7.0.10/32 -m conntrack --ctstate DNAT -j MASQUERADE`,
      `-A ${masq} -s 10.7.0.11/32 -d 10.7.0.11/32 -m conntrack --ctstate DNAT -j MASQUERADE`,
      `-A ${masq} -s 10.7.0.9/32 -d 10.7.0.9/32 -m conntrack --ctstate DNAT -j MASQUERADE`,
      'COMMIT',
      '*filter',
      `:${drop} - [0:0]`,
      `-A ${drop} -d 10.7.0.2/32 -j DROP`,
      `-A ${drop} -d 10.7.0.3/32 -j DROP`,
      'COMMIT',
      '',
    ].join('\n'));
    // The bridge answers for both VIPs (the idle one too: it then times out, as from a task's namespace).
    expect(hostVips(t, NET.id)).toEqual(['10.7.0.2', '10.7.0.3']);
    expect(hostVips(t, 'other')).toEqual(['10.8.0.2']);
  });

  test('no VIP on the network: the chains are still declared (and so emptied)', () => {
    expect(hostVipRules(table([]), NET.id, bridge)).toBe(['*nat', `:${dnat} - [0:0]`, `:${masq} - [0:0]`, 'COMMIT', '*filter', `:${drop} - [0:0]`, 'COMMIT', ''].join('\n'));
  });

  test('the jumps: from the bridge, to the bridge, and to the host at an address of the subnet; each with the comment Docker does not delete', () => {
    expect(hostVipJumps(bridge, NET.subnet)).toEqual([
      ['nat', 'PREROUTING', '-i', bridge, '-m', 'comment', '--comment', 'shoal overlay', '-j', dnat],
      ['nat', 'POSTROUTING', '-o', bridge, '-m', 'comment', '--comment', 'shoal overlay', '-j', masq],
      ['filter', 'INPUT', '-d', NET.subnet, '-m', 'comment', '--comment', 'shoal overlay', '-j', drop],
    ]);
  });

  test('a task namespace\'s rules: the same spread, its own chain', () => {
    const t = table([{ id: 's1', name: 'web', mode: 'vip', vips: [{ net: NET.id, addr: '10.7.0.2' }], tasks: [{ net: NET.id, addr: '10.7.0.9' }, { net: NET.id, addr: '10.7.0.10' }] }]);
    expect(taskVipRules(t, [NET.id])).toBe([
      '*nat', ':SHOAL-VIP - [0:0]',
      '-A SHOAL-VIP -d 10.7.0.2/32 -m statistic --mode random --probability 0.5000000000 -j DNAT --to-destination 10.7.0.9',
      '-A SHOAL-VIP -d 10.7.0.2/32 -j DNAT --to-destination 10.7.0.10',
      'COMMIT', '',
    ].join('\n'));
    expect(taskVipRules(t, ['other'])).toBe(['*nat', ':SHOAL-VIP - [0:0]', 'COMMIT', ''].join('\n'));
  });
});
