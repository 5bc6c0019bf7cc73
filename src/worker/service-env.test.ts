import { expect, test } from 'bun:test';
import { serviceEnv, taskEnv } from './runner.ts';
import type { EndpointPort } from '../manager/dispatcher/protocol.ts';

const port = (service: string, p: number, target: number, mode: 'ingress' | 'host' = 'ingress', protocol: 'tcp' | 'udp' = 'tcp'): EndpointPort =>
  ({ service, port: p, target, protocol, mode, backends: [] });

test('plain processes learn each ingress-published service as this host\'s address and its published ports', () => {
  const env = serviceEnv([port('web-front', 30001, 80), port('web-front', 30002, 53, 'ingress', 'udp'), port('db', 5433, 5432, 'host')], '10.0.0.7');
  expect(env).toEqual({
    SHOAL_SERVICE_WEB_FRONT_HOST: '10.0.0.7',
    SHOAL_SERVICE_WEB_FRONT_PORT: '30001',
    SHOAL_SERVICE_WEB_FRONT_PORT_80_TCP: '30001',
    SHOAL_SERVICE_WEB_FRONT_PORT_53_UDP: '30002',
  });
  expect(serviceEnv([port('web', 1, 2)])).toEqual({});
});

test('a task on an overlay network gets its own address', () => {
  const task = { ID: 't1', Slot: 1, ServiceID: 's', NodeID: 'n', Name: 'web.1' } as never;
  const net = { attachments: [{ address: '10.0.1.5/24' }], dns: ['10.0.1.1'] } as never;
  expect(taskEnv(task, '10.0.0.7', net)).toMatchObject({ SHOAL_TASK_ADDR: '10.0.1.5', SHOAL_NODE_ADDR: '10.0.0.7' });
  expect(taskEnv(task, '10.0.0.7').SHOAL_TASK_ADDR).toBeUndefined();
});
