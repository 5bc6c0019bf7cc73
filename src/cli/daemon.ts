/** `shoal daemon`: run this host's daemon in the foreground until SIGINT/SIGTERM. */
import { resolve } from 'node:path';
import { defaultDataDir } from '../lib/paths.ts';
import { UsageError } from './args.ts';
import type { Command } from './command.ts';

export const daemonCommand: Command = {
  name: 'daemon',
  summary: 'Run the shoal daemon on this host (foreground)',
  usage: '[OPTIONS]',
  options: [
    { long: 'data-dir', kind: 'string', value: 'DIR', help: 'state directory (default /var/lib/shoal as root, else ~/.local/share/shoal)' },
    { long: 'init', kind: 'bool', help: 'make this host a cluster of its own if it is in none yet' },
    { long: 'listen-tcp', kind: 'string', value: 'HOST:PORT', help: 'also serve the admin API on TCP, mutual TLS only (TLS 1.3; certificates from the cluster CA; clients need a bundle from "shoal ca client-bundle"); managers only' },
    { long: 'metrics-addr', kind: 'string', value: 'HOST:PORT', help: 'also serve GET /metrics (Prometheus) on TCP, with the same mutual TLS as --listen-tcp (a read-only client bundle may scrape); on workers too (their server certificate comes from a manager)' },
    { long: 'plugin-dir', kind: 'string', value: 'DIR', help: 'load executor plugins (.js/.mjs/.ts) from DIR (default <data-dir>/plugins)' },
    { long: 'fleet-addr', kind: 'string', value: 'IP:PORT', help: 'serve this executable and install.sh over HTTP for new hosts (curl http://IP:PORT/install.sh | sh -s -- --join …)' },
    { long: 'keep-tasks', kind: 'bool', help: 'leave tasks running when the daemon stops (re-attached at the next start)' },
    { long: 'listen-addr', kind: 'string', value: 'IP:PORT', help: 'where to listen for other nodes (default 0.0.0.0:4242)' },
    { long: 'advertise-addr', kind: 'string', value: 'IP:PORT', help: 'where other nodes reach this one (default: the listen address, or this host\'s first IPv4 address)' },
    { long: 'join', kind: 'string', value: 'IP:PORT', help: 'join the cluster of the manager there (needs --token); ignored once this data dir is in a cluster' },
    { long: 'token', kind: 'string', value: 'TOKEN', help: 'join token: a worker or a manager token from "shoal cluster join-token"' },
    { long: 'mesh-addr', kind: 'string', value: 'IP', help: 'address the ingress mesh listens on for published ports (default all of this host\'s addresses)' },
    { long: 'force-new-cluster', kind: 'bool', help: 'on a surviving manager after the cluster lost its quorum: make it the only manager, keeping all the state it holds (once; then start without it)' },
    { long: 'external-ca', kind: 'string', value: 'CERT,KEY', help: 'with --init: sign node certificates with this root CA (PEM files, ECDSA P-256)' },
    { long: 'restore', kind: 'string', value: 'FILE', help: 'with --force-new-cluster: start a new cluster, this host its only manager, from a backup ("shoal swarm backup"); into an empty --data-dir (see docs/backup.md)' },
    { long: 'unlock-key', kind: 'string', value: 'KEY', help: 'with --restore: the cluster\'s unlock key (SWMKEY-1-…), for a backup taken with autolock on' },
    { long: 'external-ca-url', kind: 'string', value: 'URL', help: 'with --init: a cfssl server holds the root CA key and signs node certificates (managers keep no key)' },
  ],
  maxArgs: 0,
  async run(ctx) {
    const { startDaemon } = await import('../daemon/daemon.ts');
    const dataDir = resolve(ctx.args.str('data-dir') ?? defaultDataDir());
    const pluginDir = ctx.args.str('plugin-dir');
    const restore = ctx.args.str('restore');
    if (restore !== undefined && ctx.args.str('join') !== undefined) throw new UsageError('--restore makes a new cluster from a backup: it cannot be given with --join');
    if (restore === undefined && ctx.args.str('unlock-key') !== undefined) throw new UsageError('--unlock-key is for --restore FILE (a backup taken with autolock on)');
    const d = await startDaemon({
      dataDir, init: ctx.args.bool('init'), tcp: ctx.args.str('listen-tcp'), metricsAddr: ctx.args.str('metrics-addr'), keepTasks: ctx.args.bool('keep-tasks'), fleetAddr: ctx.args.str('fleet-addr'),
      ...(pluginDir !== undefined ? { pluginDir: resolve(pluginDir) } : {}),
      listenAddr: ctx.args.str('listen-addr'), advertiseAddr: ctx.args.str('advertise-addr'),
      join: ctx.args.str('join'), token: ctx.args.str('token'), externalCa: ctx.args.str('external-ca'), externalCaUrl: ctx.args.str('external-ca-url'),
      meshAddr: ctx.args.str('mesh-addr'),
      forceNewCluster: ctx.args.bool('force-new-cluster'),
      ...(restore !== undefined ? { restore: { file: resolve(restore), unlockKey: ctx.args.str('unlock-key') } } : {}),
    });
    ctx.io.err(`shoal daemon: listening on unix://${d.socketPath}\n`);
    // An error nobody awaited (a third-party plugin's timer or promise, most likely) is logged; it
    // must not take the host's tasks' supervisor down with it.
    process.on('unhandledRejection', (e) => ctx.io.err(`shoal daemon: unhandled rejection (kept running): ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`));
    process.on('uncaughtException', (e) => ctx.io.err(`shoal daemon: uncaught exception (kept running): ${e.stack ?? e.message}\n`));
    let failed = false;
    await new Promise<void>((done) => {
      let stopping = false;
      const stop = (sig: string) => {
        if (stopping) {
          // A second signal: the user does not want to wait for a clean stop.
          ctx.io.err(`shoal daemon: ${sig} again, exiting without a clean stop\n`);
          process.exit(130);
        }
        stopping = true;
        ctx.io.err(`shoal daemon: ${sig}, stopping\n`);
        d.stop().then(done, (e) => {
          ctx.io.err(`shoal daemon: stop failed: ${(e as Error).message}\n`);
          done();
        });
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
      // The daemon may also stop itself (its raft log failed): then exit non-zero.
      d.stopped.then(done, () => {
        failed = true;
        done();
      });
    });
    return failed ? 1 : 0;
  },
};
