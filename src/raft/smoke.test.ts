import { expect, test } from 'bun:test';
import { Network } from './network.test-helper.ts';

test('smoke: three nodes elect a leader and replicate', () => {
  const net = new Network(['a', 'b', 'c']);
  const l = net.electLeader();
  net.propose(l, 'x');
  net.tick(2);
  for (const id of net.ids()) expect(net.appliedData(id)).toEqual(['x']);
});
