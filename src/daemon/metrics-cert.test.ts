import { expect, test } from 'bun:test';
import type { Node } from '../types/index.ts';
import { serverNamesFor } from './metrics-cert.ts';

function node(id: string, role: 'manager' | 'worker', o: { status?: string; advertise?: string; mesh?: string; hostname?: string; managerAddr?: string }): Node {
  return {
    ID: id, Version: { Index: 1 }, CreatedAt: '', UpdatedAt: '',
    Spec: { Role: role, Availability: 'active', Labels: {} },
    Description: { Hostname: o.hostname ?? '', Platform: { OS: 'linux', Architecture: 'x86_64' }, Resources: { NanoCPUs: 0, MemoryBytes: 0 }, Engine: { EngineVersion: '', Plugins: [] }, ...(o.mesh ? { Addr: o.mesh } : {}) },
    Status: { State: 'ready', ...(o.status ? { Addr: o.status } : {}) },
    ...(o.advertise ? { AdvertiseAddr: o.advertise } : {}),
    ...(o.managerAddr ? { ManagerStatus: { Leader: true, Reachability: 'reachable' as const, Addr: o.managerAddr } } : {}),
  } as Node;
}

test('a worker\'s metrics certificate carries the names the cluster records for it and loopback, never a manager\'s', () => {
  const w = node('w1', 'worker', { status: '10.0.0.7', advertise: '10.0.0.7:4242', mesh: '192.168.1.7', hostname: 'w1.lan' });
  const m = node('m1', 'manager', { status: '10.0.0.1', advertise: '10.0.0.1:4242', hostname: 'm1.lan', managerAddr: '10.0.0.1:4242' });
  const all = [w, m];
  expect(serverNamesFor(w, all, ['10.0.0.7', '192.168.1.7', 'W1.lan', 'localhost', '127.0.0.1', '::1'])).toEqual({
    allowed: ['10.0.0.7', '192.168.1.7', 'w1.lan', 'localhost', '127.0.0.1', '::1'], dropped: [],
  });
  expect(serverNamesFor(w, all, ['10.0.0.1', 'm1.lan', 'anything.example', '10.0.0.99'])).toEqual({ allowed: [], dropped: ['10.0.0.1', 'm1.lan', 'anything.example', '10.0.0.99'] });
  // A worker that reports a manager's address as its own still gets no certificate for it.
  const liar = node('w2', 'worker', { status: '10.0.0.8', mesh: '10.0.0.1', hostname: 'm1.lan' });
  expect(serverNamesFor(liar, [liar, m], ['10.0.0.1', 'm1.lan', '10.0.0.8']).allowed).toEqual(['10.0.0.8']);
  // Where hosts share a name (loopback test clusters, one machine), the manager's wins: the worker loses it.
  const sameHost = node('m2', 'manager', { status: '127.0.0.1', hostname: 'box' });
  const local = node('w3', 'worker', { status: '127.0.0.1', advertise: '127.0.0.3:4000', hostname: 'box' });
  expect(serverNamesFor(local, [local, sameHost], ['localhost', '127.0.0.1', 'box', '127.0.0.3'])).toEqual({ allowed: ['localhost', '127.0.0.3'], dropped: ['127.0.0.1', 'box'] });
});
