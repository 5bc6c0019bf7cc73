import { describe, expect, test } from 'bun:test';
import { attachmentOf } from '../manager/allocator/networks.ts';
import { makeNode, makeTask } from '../manager/testkit.ts';
import type { Network, Task } from '../types/index.ts';
import { overlayPlan } from './overlay-plan.ts';

const net = (id: string, subnet: string, vni: number): Network => ({
  ID: id, Version: { Index: 1 }, CreatedAt: '', UpdatedAt: '',
  Spec: { Name: id, Driver: 'overlay', IPAM: { Config: [] } },
  IPAM: { Config: [{ Subnet: subnet, Gateway: subnet.replace(/0\/\d+$/, '1') }] }, VNI: vni,
});

describe('overlayPlan', () => {
  test('networks with a task on this host, their local tasks, and every placed task behind its node', () => {
    const front = net('front', '10.0.1.0/24', 4097);
    const back = net('back', '10.0.2.0/24', 4098);
    const nodes = [makeNode({ id: 'a' }), makeNode({ id: 'b' }), makeNode({ id: 'c' })];
    nodes[0]!.Status.Addr = '192.0.2.1';
    nodes[1]!.Status.Addr = '192.0.2.2'; // c has no address yet
    const task = (node: string, state: Task['Status']['State'], ...att: [Network, string][]) =>
      makeTask('s', { NodeID: node, state, NetworksAttachments: att.map(([n, a]) => attachmentOf(n, a)) });
    const tasks = [
      task('a', 'running', [front, '10.0.1.3/24'], [back, '10.0.2.3/24']),
      task('b', 'running', [front, '10.0.1.4/24']),
      task('b', 'starting', [back, '10.0.2.4/24']),
      task('b', 'failed', [front, '10.0.1.9/24']), // finished: its address is free
      task('', 'pending', [front, '10.0.1.8/24']), // not placed yet
      task('c', 'running', [front, '10.0.1.5/24']), // node address unknown
      task('b', 'running', [net('other', '10.0.3.0/24', 4099), '10.0.3.2/24']), // no task here
    ];
    const plan = overlayPlan('a', tasks, nodes);
    expect([...plan.keys()].sort()).toEqual(['back', 'front']);
    expect(plan.get('front')).toEqual({
      network: { id: 'front', name: 'front', subnet: '10.0.1.0/24', gateway: '10.0.1.1', vni: 4097 },
      local: [{ taskId: tasks[0]!.ID, address: '10.0.1.3/24' }],
      forwarding: [{ hostAddr: '192.0.2.1', taskAddr: '10.0.1.3/24' }, { hostAddr: '192.0.2.2', taskAddr: '10.0.1.4/24' }],
    });
    expect(plan.get('back')!.forwarding).toEqual([{ hostAddr: '192.0.2.1', taskAddr: '10.0.2.3/24' }, { hostAddr: '192.0.2.2', taskAddr: '10.0.2.4/24' }]);
    expect(overlayPlan('c', tasks, nodes).get('front')!.local).toHaveLength(1);
  });
});
