/**
 * The vm executor on an overlay network (`TaskContext.network`), with a real tiny VM: the guest's
 * tap is on the network's bridge, the host reaches a TCP server in the guest at its overlay address,
 * the bridge has learnt the guest's MAC (the attachment's), the guest's resolv.conf lists the
 * resolver it was given, and remove deletes the tap. The bridge stands in for the one the worker
 * makes (src/mesh/overlay.ts): a random name and subnet in the host's namespace, removed in afterAll.
 * Skipped, with the reason, without root, /dev/net/tun, QEMU or a guest kernel.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import type { Controller, TaskNetwork } from '../../src/executor/contract.ts';
import { macFor } from '../../src/mesh/overlay.ts';
import { collect, makeContext, makeTask, tempDir, waitFor } from '../../test/compliance/fixtures.ts';
import { guestAssets, guestSpec } from '../../test/fixtures/vm/guest.ts';
import { createVmExecutor } from './index.ts';
import { removeTaps, tapName } from './network.ts';

const assets = guestAssets();
const shim = [process.execPath, resolve(import.meta.dir, '../process/shim-entry.ts')];
const ac = () => new AbortController().signal;

function sh(...argv: string[]): { code: number; out: string } {
  const p = Bun.spawnSync(argv, { stdout: 'pipe', stderr: 'pipe' });
  return { code: p.exitCode ?? -1, out: `${p.stdout.toString()}${p.stderr.toString()}` };
}
function must(...argv: string[]): string {
  const r = sh(...argv);
  if (r.code !== 0) throw new Error(`${argv.join(' ')}: exit ${r.code}: ${r.out}`);
  return r.out;
}

function whyNot(): string | undefined {
  if (typeof assets === 'string') return `needs QEMU and a guest kernel: ${assets}`;
  if (process.getuid?.() !== 0) return 'needs root (tap devices, a bridge)';
  if (!existsSync('/dev/net/tun')) return 'needs /dev/net/tun (tap devices)';
  if (sh('ip', '-V').code !== 0) return 'needs iproute2 (ip, bridge)';
  return undefined;
}
const skip = whyNot();

/** A bridge and /24 nobody on this host uses: 10.24x.y.0/24. */
function freeSubnet(): string {
  const routes = sh('ip', '-4', 'route', 'show', 'table', 'all').out;
  for (;;) {
    const net = `10.${240 + Math.floor(Math.random() * 10)}.${Math.floor(Math.random() * 256)}`;
    if (!routes.includes(`${net}.`)) return net;
  }
}

/** True when something accepts a TCP connection at host:port and answers with a line containing `want`. */
function answers(host: string, port: number, want: string, timeoutMs = 2_000): Promise<boolean> {
  return new Promise((done) => {
    let got = '';
    const s = connect({ host, port });
    const finish = (ok: boolean) => { clearTimeout(t); s.destroy(); done(ok); };
    const t = setTimeout(() => finish(false), timeoutMs);
    s.setEncoding('utf8');
    s.on('data', (d: string) => { got += d; if (got.includes(want)) finish(true); });
    s.on('error', () => finish(false));
    s.on('close', () => finish(got.includes(want)));
  });
}

if (skip) {
  describe('vm executor on an overlay network', () => { test.skip(skip, () => {}); });
} else {
  const exec = createVmExecutor({ shimCommand: shim, probeKernel: (assets as { kernel: string }).kernel });
  const tag = Math.random().toString(16).slice(2, 8);
  const bridge = `shbtest${tag}`;
  const net = freeSubnet();
  const dir = tempDir();
  const task = makeTask(guestSpec(assets as Exclude<typeof assets, string>, [
    'echo resolv-begin; cat /etc/resolv.conf; echo resolv-end',
    'echo "iface $(cat /sys/class/net/eth0/address) mtu $(cat /sys/class/net/eth0/mtu)"',
    // A line for each connection, from a persistent listener.
    'printf \'#!/bin/sh\\necho hello-from-vm\\n\' > /tmp/hello; chmod +x /tmp/hello',
    'nc -ll -p 8080 -e /tmp/hello',
  ].join('; ')));
  const network: TaskNetwork = {
    attachments: [{
      networkId: `net${tag}`, name: `test${tag}`, bridge, subnet: `${net}.0/24`, gateway: `${net}.1`,
      address: `${net}.5/24`, mac: macFor(`${net}.5`), mtu: 1450,
    }],
    dns: [`${net}.1`],
  };
  const log: string[] = [];
  let ctl: Controller | undefined;

  beforeAll(() => {
    must('ip', 'link', 'add', bridge, 'mtu', '1450', 'type', 'bridge');
    must('ip', 'addr', 'add', `${net}.1/24`, 'dev', bridge);
    must('ip', 'link', 'set', bridge, 'up');
  });
  afterAll(async () => {
    try { await ctl?.remove(); } catch { /* cleaned below */ }
    await removeTaps(task.ID).catch(() => {});
    sh('ip', 'link', 'del', bridge);
    dir[Symbol.dispose]();
  });

  describe('vm executor on an overlay network', () => {
    test('a tap on the bridge; the host reaches the guest at its address; its MAC and resolver; remove deletes the tap', async () => {
      ctl = exec.controller(task, { ...makeContext(`${dir.path}/task`, log), network });
      const tap = tapName(task.ID, 0);
      const t0 = Date.now();
      await ctl.prepare(ac());
      const link = JSON.parse(must('ip', '-d', '-j', 'link', 'show', 'dev', tap))[0];
      expect(link.master).toBe(bridge);
      expect(link.mtu).toBe(1450);
      expect(link.linkinfo.info_kind).toBe('tun');
      expect(await ctl.address!()).toBe(`${net}.5`);

      await ctl.start(ac());
      const lines = async () => (await collect(ctl!.logs({}))).map((l) => l.line);
      // TCG under load: the boot may take tens of seconds.
      await waitFor(() => answers(`${net}.5`, 8080, 'hello-from-vm'), `the guest to answer on ${net}.5:8080`, 150_000);
      const bootMs = Date.now() - t0;
      const accel = (await exec.fingerprint()).attributes['vm.accel'];
      console.log(`vm network test: the guest (accel ${accel}) answered on ${net}.5:8080 ${bootMs} ms after prepare`);

      const fdb = JSON.parse(must('bridge', '-j', 'fdb', 'show', 'br', bridge)) as { mac: string; ifname?: string; flags?: string[] }[];
      expect(fdb.some((f) => f.mac === network.attachments[0]!.mac && f.ifname === tap)).toBe(true);

      const out = await lines();
      const resolv = out.slice(out.indexOf('resolv-begin') + 1, out.indexOf('resolv-end'));
      expect(resolv.map((l) => l.trim())).toContain(`nameserver ${net}.1`);
      expect(out.find((l) => l.startsWith('iface '))?.trim()).toBe(`iface ${network.attachments[0]!.mac} mtu 1450`);

      // A daemon restart: a fresh executor and controller re-attach, and release the tap by its name.
      const again = createVmExecutor({ shimCommand: shim, probeKernel: (assets as { kernel: string }).kernel })
        .controller(task, { ...makeContext(`${dir.path}/task`, log), network });
      expect(await again.recover()).toBe(true);
      expect(await again.address!()).toBe(`${net}.5`);
      await again.stop(1_000);
      expect(sh('ip', 'link', 'show', 'dev', tap).code).not.toBe(0);
      await again.remove();
      await again.remove(); // idempotent
      expect(log.some((l) => l.includes(`deleted taps ${tap}`))).toBe(true);
    }, 240_000);
  });
}
