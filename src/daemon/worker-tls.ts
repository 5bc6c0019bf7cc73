/**
 * How a worker serves its `--metrics-addr` listener with the managers' mutual TLS (admin-tcp.ts):
 * the revoked client bundles come with its dispatcher session (the `revocations` frame), its server
 * certificate from a manager (`/shoal/ca/server-cert/1`, for a key made here that never leaves the
 * process), asked again when admin-tcp renews it.
 */
import { generateKeyPairSync } from 'node:crypto';
import { AbortedError, errorMessage } from '../lib/errors.ts';
import type { ServerCert, WorkerTlsSource } from './admin-tcp.ts';
import type { DaemonContext } from './context.ts';

/** Longest wait between two rounds of asking the managers. */
const MAX_RETRY_MS = 60_000;

export function workerTlsSource(ctx: DaemonContext): WorkerTlsSource {
  return {
    clusterId: () => ctx.membership?.ClusterID ?? null,
    revocations: () => ctx.worker?.clientRevocations ?? null,
    serverCert: (hosts, signal) => serverCertFromManagers(ctx, hosts, signal),
  };
}

async function serverCertFromManagers(ctx: DaemonContext, hosts: string[], signal: AbortSignal): Promise<ServerCert> {
  let retryMs = 1000;
  for (;;) {
    if (signal.aborted) throw new AbortedError('stopped');
    const { net, membership: m } = ctx;
    // Before the cluster network is up there is nobody to ask yet: wait for it, quietly.
    if (net?.identity && m) {
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const req = { publicKey: publicKey.export({ type: 'spki', format: 'pem' }) as string, hosts };
      const failures: string[] = [];
      for (const addr of [...new Set([...m.Managers.map((x) => x.Addr), ...ctx.sessionManagers])].filter((x) => x !== ctx.advertised)) {
        try {
          const issued = await net.serverCertFrom(addr, req);
          const left = hosts.filter((h) => !issued.hosts.includes(h.toLowerCase()));
          ctx.log(`metrics on TCP: server certificate from ${addr} for ${issued.hosts.join(', ')}, valid until ${new Date(issued.notAfter).toISOString()}${left.length ? ` (not for ${left.join(', ')}: the cluster does not record this node under those names)` : ''}`);
          return {
            certPem: issued.certPem,
            keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
            caPem: m.RootCA,
            renewInMs: Math.floor((issued.notAfter - Date.now()) * 2 / 3),
          };
        } catch (err) {
          failures.push(`${addr}: ${errorMessage(err)}`);
        }
      }
      ctx.log(`metrics on TCP: no manager issued a server certificate (${failures.join('; ') || 'no manager known'}); asking again in ${Math.round(retryMs / 1000)} s`);
      await delay(retryMs, signal);
      retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
    } else {
      await delay(1000, signal);
    }
  }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new AbortedError('stopped'));
    const onAbort = () => { clearTimeout(t); reject(new AbortedError('stopped')); };
    const t = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
