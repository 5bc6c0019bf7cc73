/**
 * Process tasks on overlay networks: the task runs inside the network namespace the worker made
 * (`TaskContext.network.netns`) and sees `network.dns` in its /etc/resolv.conf, the host's file
 * untouched. The kernel tests make their own namespace (`shoaltest-<random>`) with a veth pair
 * (host 10.254.N.1/30, namespace 10.254.N.2/30) and delete it in afterAll whatever happened.
 * They need root and `ip` (iproute2) and say so when they skip.
 */
import { afterAll, afterEach, beforeAll, expect, test } from 'bun:test';
import { existsSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { Controller, TaskNetwork } from '../../src/executor/contract.ts';
import { PrepareError, StartError } from '../../src/executor/errors.ts';
import type { ProcessSpec } from '../../src/types/index.ts';
import { collect, makeContext, makeTask, tempDir, waitFor } from '../../test/compliance/fixtures.ts';
import { cgroupMembers, detectCgroups } from './cgroup.ts';
import { isAlive, path, procStat, readJson, type PidRecord, type ShimSpec } from './files.ts';
import { createProcessExecutor, resolvConf } from './index.ts';
import { findTools, launchArgv, missingTools } from './launch.ts';
import { testShim } from './testdata/shims.ts';

const PARENT = 'shoal-test';
const shim = await testShim();
const signal = () => AbortSignal.timeout(15_000);
const root = process.getuid?.() === 0;
const tools = findTools();
const usable = root && !!tools.ip && !!tools.nsenter && !!tools.unshare && !!tools.mount && !!tools.sh;
if (!root) console.warn('network namespace tests skipped: they need root (CI runs as root)');
else if (!usable) console.warn('network namespace tests skipped: they need ip (iproute2), nsenter, unshare and mount (util-linux)');
const withCgroups = usable && detectCgroups(PARENT).mode !== 'none';

const tag = randomBytes(3).toString('hex');
const octet = 1 + (parseInt(tag.slice(0, 2), 16) % 250);
const NS = `shoaltest-${tag}`;
const NS_PATH = `/run/netns/${NS}`;
const HOST_IF = `stv${tag}h`;
const NS_IF = `stv${tag}n`;
const HOST_IP = `10.254.${octet}.1`;
const NS_IP = `10.254.${octet}.2`;
const DNS = ['10.0.1.1'];
const made: string[] = []; // namespaces to delete in afterAll

function ip(...args: string[]): string {
  const r = Bun.spawnSync([tools.ip!, ...args], { stdout: 'pipe', stderr: 'pipe' });
  if (r.exitCode !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
}
function addNamespace(name: string): string {
  made.push(name);
  ip('netns', 'add', name);
  return `/run/netns/${name}`;
}
/** `net:[inode]` as readlink /proc/PID/ns/net shows it, for a namespace file. */
const nsId = (file: string) => `net:[${statSync(file).ino}]`;
/** Pids inside a namespace (ip netns pids). */
const nsPids = (name: string) => ip('netns', 'pids', name).split('\n').filter(Boolean).map(Number);

beforeAll(() => {
  if (!usable) return;
  addNamespace(NS);
  ip('link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', NS_IF);
  ip('link', 'set', NS_IF, 'netns', NS);
  ip('addr', 'add', `${HOST_IP}/30`, 'dev', HOST_IF);
  ip('link', 'set', HOST_IF, 'up');
  ip('-n', NS, 'addr', 'add', `${NS_IP}/30`, 'dev', NS_IF);
  ip('-n', NS, 'link', 'set', NS_IF, 'up');
});

afterAll(() => {
  for (const name of made) {
    try { for (const pid of nsPids(name)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } } } catch { /* no namespace */ }
    try { ip('netns', 'del', name); } catch { /* already gone */ }
  }
  try { ip('link', 'del', HOST_IF); } catch { /* went with the namespace */ }
  if (usable) {
    for (const name of made) expect(existsSync(`/run/netns/${name}`)).toBe(false);
  }
});

const cleanups: (() => unknown)[] = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

const network = (netns = NS_PATH, dns = DNS): TaskNetwork => ({ attachments: [], dns, netns });

function setup(p: ProcessSpec, net: TaskNetwork | null = network()) {
  const dir = tempDir();
  const exec = createProcessExecutor({ shimCommand: shim, cgroupParent: PARENT });
  const task = makeTask({ Runtime: 'process', ProcessSpec: p });
  const ctx = { ...makeContext(join(dir.path, 'task')), ...(net ? { network: net } : {}) };
  const ctl = exec.controller(task, ctx);
  cleanups.push(() => dir[Symbol.dispose](), () => ctl.remove());
  return { exec, task, ctx, ctl, taskDir: ctx.taskDir };
}
const sh = (script: string, more: Partial<ProcessSpec> = {}): ProcessSpec => ({ Command: ['/bin/sh', '-c', script], ...more });
async function started(ctl: Controller) { await ctl.prepare(signal()); await ctl.start(signal()); }
const lines = async (ctl: Controller) => (await collect(ctl.logs({}))).map((l) => l.line);
const childOf = (taskDir: string) => readJson<PidRecord>(path(taskDir, 'child'))!;
const REPORT = 'readlink /proc/self/ns/net; cat /etc/resolv.conf; ip -o -4 addr show';

test('the launch enters the namespace as root, mounts resolv.conf, marks, then switches user and execs', () => {
  const t = { sh: '/bin/sh', nsenter: '/usr/bin/nsenter', unshare: '/usr/bin/unshare', mount: '/usr/bin/mount', ip: '/usr/sbin/ip', setpriv: '/usr/bin/setpriv' };
  const argv = launchArgv(['prog', 'arg'], {
    cgroupProcs: [], user: { uid: 65534, gid: 65534, groups: [] },
    netns: { path: '/run/netns/x', resolvConf: '/t/resolv.conf', mark: '/t/launched' },
  }, t);
  const at = (s: string) => argv.indexOf(s);
  expect(argv.slice(0, 3)).toEqual(['/usr/bin/nsenter', '--net=/run/netns/x', '--']);
  expect(argv.slice(3, 8)).toEqual(['/usr/bin/unshare', '--mount', '--propagation', 'slave', '--']);
  expect(at('--resolv')).toBeLessThan(at('--mark'));
  expect(argv[at('--resolv') + 2]).toBe('/t/resolv.conf');
  expect(at('--mark')).toBeLessThan(at('/usr/bin/setpriv'));
  expect(argv.slice(-2)).toEqual(['prog', 'arg']);
  // No resolvers: no mount namespace, only the namespace and the mark.
  const bare = launchArgv(['prog'], { cgroupProcs: [], netns: { path: '/run/netns/x', mark: '/t/launched' } }, t);
  expect(bare).not.toContain('/usr/bin/unshare');
  expect(bare).not.toContain('--resolv');
  expect(bare).toContain('--mark');
});

test('Isolation.Mount with files: bound read-only inside the new mount namespace, before the user switch; without Mount, never', () => {
  const t = { sh: '/bin/sh', unshare: '/usr/bin/unshare', mount: '/usr/bin/mount', ip: '/usr/sbin/ip', setpriv: '/usr/bin/setpriv' };
  const files: [string, string][] = [['/f/secrets', '/run/secrets'], ['/f/configs', '/run/configs']];
  const argv = launchArgv(['prog'], { cgroupProcs: [], isolation: { Mount: true }, files, user: { uid: 1, gid: 1, groups: [] } }, t);
  expect(argv.slice(0, 3)).toEqual(['/usr/bin/unshare', '--mount', '--']);
  const at = argv.indexOf('--files');
  expect(argv.slice(at, at + 9)).toEqual(['--files', '/usr/bin/mount', '/f/secrets', '/run/secrets', '--files', '/usr/bin/mount', '/f/configs', '/run/configs', '--']);
  expect(at).toBeLessThan(argv.indexOf('/usr/bin/setpriv'));
  expect(argv).not.toContain('--loopback');
  expect(launchArgv(['prog'], { cgroupProcs: [], isolation: { Pid: true }, files }, t)).not.toContain('--files');
  expect(missingTools({ cgroupProcs: [], isolation: { Mount: true }, files }, { unshare: '/usr/bin/unshare' })).toContain('needs sh and mount');
});

test('resolv.conf: the given nameservers, the host\'s search domains and options', () => {
  using dir = tempDir();
  const host = join(dir.path, 'resolv.conf');
  writeFileSync(host, '# generated\nnameserver 192.168.1.1\nsearch corp.example\noptions ndots:2\n');
  expect(resolvConf(['10.0.1.1', '10.0.2.1'], host)).toBe('nameserver 10.0.1.1\nnameserver 10.0.2.1\nsearch corp.example\noptions ndots:2\n');
  expect(resolvConf(['10.0.1.1'], join(dir.path, 'none'))).toBe('nameserver 10.0.1.1\n');
});

test.if(usable)('the task runs inside the namespace, sees the resolvers, in its cgroup; the host is untouched', async () => {
  const hostResolv = readFileSync('/etc/resolv.conf', 'utf8');
  const hostMounts = readFileSync('/proc/self/mountinfo', 'utf8');
  const { ctl, taskDir } = setup(sh(`${REPORT}; echo up; exec sleep 1000`));
  await started(ctl);
  await waitFor(async () => (await lines(ctl)).includes('up'), 'the task report');
  const out = await lines(ctl);
  expect(out[0]).toBe(nsId(NS_PATH));
  expect(out[0]).not.toBe(readlinkSync('/proc/self/ns/net'));
  expect(out).toContain('nameserver 10.0.1.1');
  expect(out.some((l) => l.includes(`${NS_IP}/30`))).toBe(true);
  expect(out.some((l) => l.includes(`${HOST_IP}/`))).toBe(false);
  // The pid the shim watches is the program (exec all the way), inside the namespace.
  const child = childOf(taskDir);
  expect(readlinkSync(`/proc/${child.pid}/ns/net`)).toBe(nsId(NS_PATH));
  expect(readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0')[0]).toBe('sleep');
  if (withCgroups) expect(cgroupMembers(readJson<ShimSpec>(path(taskDir, 'spec'))!.cgroup!)).toContain(child.pid);
  expect(readFileSync('/etc/resolv.conf', 'utf8')).toBe(hostResolv);
  expect(readFileSync('/proc/self/mountinfo', 'utf8')).toBe(hostMounts);
  await ctl.stop(2_000);
  expect(await ctl.wait(signal())).toEqual({ exitCode: 143, signal: 'SIGTERM', message: 'killed by SIGTERM' });
  expect(nsPids(NS)).toEqual([]);
});

test.if(usable)('a task listening inside the namespace is reached at its address, not on host loopback; stop kills it', async () => {
  const port = 20_000 + Math.floor(Math.random() * 30_000);
  const server = `Bun.serve({ hostname: '0.0.0.0', port: ${port}, fetch: () => new Response('from-ns') }); console.log('listening')`;
  const { ctl, taskDir } = setup({ Command: [process.execPath, '-e', server] });
  await started(ctl);
  await waitFor(async () => (await lines(ctl)).includes('listening'), 'the server to listen');
  const res = await fetch(`http://${NS_IP}:${port}/`, { signal: signal() });
  expect(await res.text()).toBe('from-ns');
  const local = await fetch(`http://127.0.0.1:${port}/`, { signal: signal() }).then(() => 'answered', (e: Error) => e.message);
  expect(local).not.toBe('answered');
  const child = childOf(taskDir);
  await ctl.stop(2_000);
  expect(isAlive(child)).toBe(false);
  expect((await ctl.wait(signal())).signal).toBe('SIGTERM');
  expect(nsPids(NS)).toEqual([]);
  const after = await fetch(`http://${NS_IP}:${port}/`, { signal: signal() }).then(() => 'answered', (e: Error) => e.message);
  expect(after).not.toBe('answered');
});

test.if(usable)('with User nobody the task still enters the namespace, as nobody; its exit code is reported', async () => {
  const { ctl } = setup(sh(`id -u; ${REPORT}; exit 3`, { User: 'nobody' }));
  await started(ctl);
  expect(await ctl.wait(signal())).toEqual({ exitCode: 3, message: 'exit code 3' });
  const out = await lines(ctl);
  expect(out[0]).toBe('65534');
  expect(out[1]).toBe(nsId(NS_PATH));
  expect(out).toContain('nameserver 10.0.1.1');
  expect(out.some((l) => l.includes(`${NS_IP}/30`))).toBe(true);
});

test.if(usable)('with Isolation the task is PID 1 of its own namespaces; the worker\'s namespace stands in for Network', async () => {
  const { ctl } = setup(sh('echo pid=$$; readlink /proc/self/ns/net; readlink /proc/self/ns/mnt; cat /etc/resolv.conf', { Isolation: { Pid: true, Mount: true, Network: true } }));
  await started(ctl);
  expect((await ctl.wait(signal())).exitCode).toBe(0);
  const out = await lines(ctl);
  expect(out.slice(0, 2)).toEqual(['pid=1', nsId(NS_PATH)]);
  expect(out[2]).not.toBe(readlinkSync('/proc/self/ns/mnt'));
  expect(out).toContain('nameserver 10.0.1.1');
});

test.if(withCgroups)('stop kills a daemon the task left in the namespace in another session', async () => {
  const { ctl, taskDir } = setup(sh('(setsid sh -c "sleep 1000 & echo \\$! > daemon.pid" &); echo up; exec sleep 1000'));
  await started(ctl);
  const pidFile = join(taskDir, 'work', 'daemon.pid');
  const daemon = Number(await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim(), 'the daemon pid'));
  expect(readlinkSync(`/proc/${daemon}/ns/net`)).toBe(nsId(NS_PATH));
  await ctl.stop(2_000);
  const st = procStat(daemon);
  expect(!!st && st.state !== 'Z').toBe(false);
  expect(nsPids(NS)).toEqual([]);
});

test.if(usable)('a missing namespace fails prepare naming it; one gone by start fails start naming it', async () => {
  const missing = `/run/netns/shoaltest-${tag}-missing`;
  const { ctl } = setup(sh('true'), network(missing));
  const err = await ctl.prepare(signal()).catch((e) => e);
  expect(err).toBeInstanceOf(PrepareError);
  expect(err.message).toContain(missing);

  const name = `shoaltest-${tag}-gone`;
  const gone = addNamespace(name);
  const { ctl: late } = setup(sh('echo should-not-run'), network(gone));
  await late.prepare(signal());
  ip('netns', 'del', name);
  const err2 = await late.start(signal()).catch((e) => e);
  expect(err2).toBeInstanceOf(StartError);
  expect(err2.message).toContain(`network namespace ${gone}`);
  expect(await lines(late)).not.toContain('should-not-run');
});

test.if(usable)('after a kill -9 of the daemon, a restarted one recovers the task from its files and stops it', async () => {
  const dir = tempDir();
  cleanups.push(() => dir[Symbol.dispose]());
  const taskDir = join(dir.path, 'task');
  const task = makeTask({ Runtime: 'process', ProcessSpec: sh('echo up; exec sleep 1000') });
  const daemon = Bun.spawn([process.execPath, resolve(import.meta.dir, 'testdata/fake-daemon.ts'), taskDir, JSON.stringify(task), JSON.stringify(network())], {
    stdout: 'pipe', stderr: 'inherit',
  });
  cleanups.push(() => daemon.kill('SIGKILL'));
  const first = await Promise.race([daemon.stdout.getReader().read(), daemon.exited.then(() => undefined)]);
  expect(new TextDecoder().decode(first?.value)).toBe('started\n');
  daemon.kill('SIGKILL');
  await daemon.exited;

  const child = childOf(taskDir);
  expect(readlinkSync(`/proc/${child.pid}/ns/net`)).toBe(nsId(NS_PATH));
  const ctl = createProcessExecutor({ shimCommand: shim, cgroupParent: PARENT }).controller(task, { ...makeContext(taskDir), network: network() });
  cleanups.push(() => ctl.remove());
  expect(await ctl.recover()).toBe(true);
  expect(childOf(taskDir)).toEqual(child); // re-attached, not restarted
  await waitFor(async () => (await lines(ctl)).includes('up'), 'the task output');
  await ctl.stop(2_000);
  expect((await ctl.wait(signal())).exitCode).toBe(143);
  expect(nsPids(NS)).toEqual([]);
});

test.if(usable)('without a network nothing changes: the host namespace and resolv.conf', async () => {
  const { ctl, taskDir } = setup(sh('readlink /proc/self/ns/net; cat /etc/resolv.conf'), null);
  await started(ctl);
  expect((await ctl.wait(signal())).exitCode).toBe(0);
  const out = await lines(ctl);
  expect(out[0]).toBe(readlinkSync('/proc/self/ns/net'));
  expect(out.slice(1).join('\n')).toBe(readFileSync('/etc/resolv.conf', 'utf8').trimEnd());
  expect(readJson<ShimSpec>(path(taskDir, 'spec'))!.netns).toBeUndefined();
});

test.if(!root)('as non-root, a network namespace is refused at prepare, naming it', async () => {
  const { ctl } = setup(sh('true'), network('/run/netns/shoaltest-any'));
  const err = await ctl.prepare(signal()).catch((e) => e);
  expect(err).toBeInstanceOf(PrepareError);
  expect(err.message).toContain('network namespace /run/netns/shoaltest-any');
});
