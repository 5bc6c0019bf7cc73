import { afterEach, expect, test } from 'bun:test';
import { IngressProxy } from './ingress.ts';
import { greetingBackend, waitFor, whoAnswers } from './testkit.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

for (const engine of ['native', 'js'] as const) {
  test(`per-port totals for metrics (${engine} relay): connections and bytes, kept across a republish`, async () => {
    const b = greetingBackend('alpha');
    cleanups.push(() => b.stop());
    const p = new IngressProxy({ bindAddress: '127.0.0.1', tcpRelay: engine });
    cleanups.push(() => p.close());
    const port = await p.publish(0);
    p.setBackends(port, [{ addr: '127.0.0.1', port: b.port, local: false, healthy: true }]);
    expect(await whoAnswers(port)).toBe('alpha');
    expect(await whoAnswers(port)).toBe('alpha');
    const key = `${port}/tcp`;
    expect(p.portCounters().get(key)?.connections).toBe(2);
    // The native relay counts a connection's bytes when it closes: wait for both closes.
    await waitFor(() => p.portCounters().get(key)?.bytesOut === 2 * 'alpha\n'.length, 'the greetings counted');
    expect(p.portCounters().get(key)?.bytesIn).toBe(0);

    p.unpublish(port);
    await p.publish(port);
    p.setBackends(port, [{ addr: '127.0.0.1', port: b.port, local: false, healthy: true }]);
    expect(await whoAnswers(port)).toBe('alpha');
    expect(p.portCounters().get(key)?.connections).toBe(3);
  });
}
