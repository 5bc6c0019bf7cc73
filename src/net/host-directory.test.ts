import { describe, expect, test } from 'bun:test';
import { HostDirectory } from './host-directory.ts';
import { ann, FakeClock } from './host-gossip.test-helper.ts';

describe('HostDirectory', () => {
  test('newer incarnation wins; within one incarnation the higher seq', () => {
    const clock = new FakeClock();
    const d = new HostDirectory({ clock });
    expect(d.offer(ann('a', { incarnation: 100, seq: 5, addr: '10.0.0.5' }))).toBe('applied');
    expect(d.offer(ann('a', { incarnation: 100, seq: 4 }))).toBe('stale');
    expect(d.offer(ann('a', { incarnation: 100, seq: 5 }))).toBe('stale');
    expect(d.offer(ann('a', { incarnation: 99, seq: 50 }))).toBe('stale');
    expect(d.get('a')!.announcement.addr).toBe('10.0.0.5');
    expect(d.offer(ann('a', { incarnation: 100, seq: 6, addr: '10.0.0.6' }))).toBe('applied');
    expect(d.offer(ann('a', { incarnation: 200, seq: 1, addr: '10.0.0.7' }))).toBe('applied');
    expect(d.get('a')!.announcement).toMatchObject({ incarnation: 200, seq: 1, addr: '10.0.0.7' });
    expect(d.offer(ann('a', { incarnation: 100, seq: 7 }))).toBe('stale');
    d.stop();
  });

  test('expiry, forwarding of live remote hosts, coalesced change notifications', () => {
    const clock = new FakeClock();
    const d = new HostDirectory({ clock, expireMs: 5000 });
    let changes = 0;
    d.onChange(() => changes++);
    d.offer(ann('self', { addr: '192.168.0.1', nets: { net1: ['10.1.0.2'] } }), { local: true });
    d.offer(ann('a', { addr: '192.168.0.2', nets: { net1: ['10.1.0.3', '10.1.0.4'], net2: ['10.2.0.3'] } }));
    d.offer(ann('b', { addr: '192.168.0.3', nets: { net1: ['10.1.0.5'] } }));
    expect(changes).toBe(0);
    clock.advance(0);
    expect(changes).toBe(1); // three changes, one call
    expect(d.forwarding('net1')).toEqual([
      { hostAddr: '192.168.0.2', taskAddr: '10.1.0.3', node: 'a' },
      { hostAddr: '192.168.0.2', taskAddr: '10.1.0.4', node: 'a' },
      { hostAddr: '192.168.0.3', taskAddr: '10.1.0.5', node: 'b' },
    ]);
    expect(d.forwarding('net2')).toEqual([{ hostAddr: '192.168.0.2', taskAddr: '10.2.0.3', node: 'a' }]);
    expect(d.forwarding('nope')).toEqual([]);
    expect(d.forwarding('__proto__')).toEqual([]);

    // Same entries in another order, from a newer seq: no change.
    clock.advance(1000);
    d.offer(ann('a', { seq: 2, addr: '192.168.0.2', nets: { net2: ['10.2.0.3'], net1: ['10.1.0.4', '10.1.0.3'] } }));
    clock.advance(0);
    expect(changes).toBe(1);

    // b goes quiet: dead 5 s after it was last heard, dropped, one notification.
    clock.advance(3999);
    expect(d.alive('b')).toBe(true);
    clock.advance(1);
    expect(d.alive('b')).toBe(false);
    expect(d.forwarding('net1').map((e) => e.node)).toEqual(['a', 'a']);
    clock.advance(250); // the sweep runs no more often than expireMs / 20
    expect(d.get('b')).toBeUndefined();
    expect(changes).toBe(2);
    expect(d.alive('a')).toBe(true);

    // a goes quiet too; the local host never expires.
    clock.advance(10_000);
    expect(d.hosts().map((h) => [h.node, h.alive, h.local])).toEqual([['self', true, true]]);
    expect(changes).toBe(3);

    // A host heard again after expiry comes back whatever its incarnation.
    d.offer(ann('a', { incarnation: 50, seq: 1, addr: '192.168.0.2', nets: { net1: ['10.1.0.9'] } }));
    clock.advance(0);
    expect(changes).toBe(4);
    expect(d.forwarding('net1')).toEqual([{ hostAddr: '192.168.0.2', taskAddr: '10.1.0.9', node: 'a' }]);
    d.stop();
    expect(clock.pending).toBe(0);
  });
});
