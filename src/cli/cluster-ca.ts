/**
 * `shoal cluster ca` (Docker's `docker swarm ca`): print the cluster's root CA certificate, or
 * rotate the root (`--rotate`, a new one made by the cluster or given with `--ca-cert/--ca-key`,
 * or one an external cfssl CA signs for) and follow the rotation until every node holds a
 * certificate from the new root and trusts it alone, as the docker CLI does.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from './args.ts';
import type { Command } from './command.ts';
import { ConvergeError } from './progress.ts';
import { invalid, parseDuration } from './units.ts';

interface TlsInfo { TrustRoot?: string; CertIssuerSubject?: string; CertIssuerPublicKey?: string }
interface SwarmView {
  Version: { Index: number };
  Spec: { CAConfig?: { ForceRotate?: number; SigningCACert?: string; ExternalCAs?: unknown[] } };
  TLSInfo?: TlsInfo;
  RootRotationInProgress?: boolean;
}
interface NodeView { ID: string; Description?: { Hostname?: string; TLSInfo?: TlsInfo } }

const POLL_MS = 500;

function readPem(flag: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw invalid(flag, file, `cannot read it (${(err as Error).message})`);
  }
}

/** `protocol=cfssl,url=https://…[,cacert=FILE]`, Docker's --external-ca. */
export function parseExternalCA(raw: string): { Protocol: string; URL: string; CACert?: string } {
  const fields = new Map<string, string>();
  for (const part of raw.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw invalid('external-ca', raw, 'expected protocol=cfssl,url=URL[,cacert=FILE]');
    fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const protocol = fields.get('protocol') ?? '';
  const url = fields.get('url') ?? '';
  if (protocol.toLowerCase() !== 'cfssl') throw invalid('external-ca', raw, `protocol "${protocol}": only cfssl is supported`);
  if (!/^https?:\/\//.test(url)) throw invalid('external-ca', raw, 'expected url=http://… or https://…');
  const cacert = fields.get('cacert');
  return { Protocol: 'cfssl', URL: url, ...(cacert ? { CACert: readPem('external-ca', cacert) } : {}) };
}

/** Whether the rotation has converged: none in progress, every node's certificate from the root, trusting it alone. */
export function rotationProgress(swarm: SwarmView, nodes: NodeView[]): { certs: number; roots: number; total: number; done: boolean } {
  const want = swarm.TLSInfo ?? {};
  let certs = 0;
  let roots = 0;
  for (const n of nodes) {
    const t = n.Description?.TLSInfo ?? {};
    if (t.CertIssuerPublicKey === want.CertIssuerPublicKey && t.CertIssuerSubject === want.CertIssuerSubject) certs++;
    if (t.TrustRoot === want.TrustRoot) roots++;
  }
  const total = nodes.length;
  const done = !swarm.RootRotationInProgress && certs === total && roots === total;
  return { certs, roots: swarm.RootRotationInProgress ? 0 : roots, total, done };
}

export const caCommand: Command = {
  name: 'ca',
  summary: 'Show the root CA certificate, or rotate the root CA (docker swarm ca)',
  usage: '[--rotate [--ca-cert FILE --ca-key FILE] [--external-ca SPEC]] [OPTIONS]',
  options: [
    { long: 'rotate', kind: 'bool', help: 'rotate the root CA: a new root made by the cluster unless --ca-cert gives one; waits until every node uses it' },
    { long: 'ca-cert', kind: 'string', value: 'FILE', help: 'with --rotate: the new root CA certificate (PEM)' },
    { long: 'ca-key', kind: 'string', value: 'FILE', help: 'with --rotate: the new root CA key (PEM); left out when --external-ca signs for --ca-cert' },
    { long: 'external-ca', kind: 'string', value: 'SPEC', help: 'with --rotate: protocol=cfssl,url=URL[,cacert=FILE]: a cfssl server that signs for the new root' },
    { long: 'detach', short: 'd', kind: 'bool', help: 'do not wait for the rotation to finish' },
    { long: 'quiet', short: 'q', kind: 'bool', help: 'print nothing while waiting, nor the new root' },
    { long: 'timeout', kind: 'string', value: 'DURATION', help: 'give up waiting after this long (default 5m); the rotation goes on' },
  ],
  maxArgs: 0,
  async run(ctx) {
    const client = ctx.client();
    const rotate = ctx.args.bool('rotate');
    const certFile = ctx.args.str('ca-cert');
    const keyFile = ctx.args.str('ca-key');
    const external = ctx.args.str('external-ca');
    if (!rotate) {
      for (const [flag, v] of [['ca-cert', certFile], ['ca-key', keyFile], ['external-ca', external]] as const) {
        if (v !== undefined) throw new UsageError(`--${flag} needs --rotate (to rotate the root CA)`);
      }
      const swarm = await client.json<SwarmView>('GET', '/swarm');
      ctx.io.out(`${(swarm.TLSInfo?.TrustRoot ?? '').trim()}\n`);
      return;
    }
    if (keyFile !== undefined && certFile === undefined) throw new UsageError('--ca-key needs --ca-cert (the certificate of that key)');
    if (external !== undefined && certFile === undefined) throw new UsageError('--external-ca with --rotate needs --ca-cert: the root certificate that external CA signs for');
    if (certFile !== undefined && keyFile === undefined && external === undefined) throw new UsageError('--ca-cert needs --ca-key, or --external-ca (a cfssl server that holds its key)');
    const timeoutNs = parseDuration('timeout', ctx.args.str('timeout') ?? '5m');
    const swarm = await client.json<SwarmView>('GET', '/swarm');
    const CAConfig: Record<string, unknown> = {};
    if (certFile !== undefined) {
      CAConfig.SigningCACert = readPem('ca-cert', certFile);
      if (keyFile !== undefined) CAConfig.SigningCAKey = readPem('ca-key', keyFile);
    } else {
      CAConfig.ForceRotate = (swarm.Spec.CAConfig?.ForceRotate ?? 0) + 1;
    }
    if (external !== undefined) CAConfig.ExternalCAs = [parseExternalCA(external)];
    await client.updateCluster(swarm.Version.Index, { CAConfig });
    if (ctx.args.bool('detach')) return;
    const quiet = ctx.args.bool('quiet');
    const deadline = Date.now() + timeoutNs / 1e6;
    let last = '';
    for (;;) {
      const [now, nodes] = await Promise.all([client.json<SwarmView>('GET', '/swarm'), client.json<NodeView[]>('GET', '/nodes')]);
      const p = rotationProgress(now, nodes);
      const line = `rotated TLS certificates: ${p.certs}/${p.total} nodes; rotated CA certificates: ${p.roots}/${p.total} nodes`;
      if (!quiet && line !== last) ctx.io.out(`${line}\n`);
      last = line;
      if (p.done) {
        if (!quiet) ctx.io.out(`${(now.TLSInfo?.TrustRoot ?? '').trim()}\n`);
        return;
      }
      if (Date.now() > deadline) {
        const behind = nodes.filter((n) => n.Description?.TLSInfo?.TrustRoot !== now.TLSInfo?.TrustRoot).map((n) => n.Description?.Hostname || n.ID);
        throw new ConvergeError(`the root rotation has not finished after ${ctx.args.str('timeout') ?? '5m'} (it goes on): waiting for ${behind.join(', ') || 'the leader to complete it'}; a node that is down does not hold it up, one that is up but unreachable does`);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  },
};
