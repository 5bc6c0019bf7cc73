/**
 * The cluster network as a service of the daemon: this host's identity (for a cluster made here,
 * the root CA, the join tokens and its own certificate) and the libp2p listener (cluster-net.ts),
 * brought up in the background after the API. x509, key generation and libp2p cost more CPU than
 * the rest of a start, and nothing local waits for them (GET /swarm waits for the tokens).
 */
import { errorMessage, UnavailableError } from '../lib/errors.ts';
import { currentCluster } from './cluster.ts';
import type { ClusterNet } from './cluster-net.ts';
import type { DaemonContext } from './context.ts';
import { formatHostPort, type Membership } from './membership.ts';
import type { Service } from '../lib/lifecycle.ts';

/**
 * How long after the API is up the CA and libp2p start (CPU-bound: module load, key generation): the
 * first CLI requests, which usually follow a start at once, are not queued behind them.
 */
const NET_START_DELAY_MS = 100;

export class NetService implements Service {
  readonly name = 'cluster-net';
  #starting: Promise<void> | null = null;

  /** `onUp`: the listener is up and this host holds its certificate; what each role starts on it. */
  constructor(private readonly ctx: DaemonContext, private readonly onUp: (net: ClusterNet, membership: Membership) => Promise<void>) {}

  /** Schedule the bring-up (called once this host is in a cluster). */
  async start(): Promise<void> {
    const ctx = this.ctx;
    if (ctx.net?.identity) return this.bringUp(); // joined at start: the network is up already
    // A first manager that has never made a root CA has shown no join token, so no other host can
    // be in its cluster or join it yet: the CA, its certificate and the listener wait until a token
    // is asked for (GET /swarm, join-token, rotation). A one-host cluster does not pay for them
    // (about 20 MB of an 85 MB idle daemon, measured with dist/shoal).
    if (!ctx.membership && !currentCluster(ctx.store)?.RootCA && !ctx.opts.externalCa && !currentCluster(ctx.store)?.Spec.CAConfig?.ExternalCAs?.length) return;
    setTimeout(() => {
      if (!ctx.stopping) this.bringUp();
    }, NET_START_DELAY_MS);
  }

  /** Bring the network up now (once); a failure is logged (other nodes cannot reach this one), never fatal. */
  bringUp(): void {
    this.#starting ??= this.#bringUp().catch((err) => {
      this.ctx.log(`cluster network: ${errorMessage(err)}; this node works alone until restarted with a free --listen-addr`);
    });
  }

  /** Up now, or given up on: what the API waits for before it shows a join token. */
  async ready(): Promise<void> {
    this.bringUp();
    await this.#starting;
  }

  async stop(): Promise<void> {
    await this.#starting;
    await this.ctx.net?.stop();
  }

  async #bringUp(): Promise<void> {
    const ctx = this.ctx;
    const membership = await ensureIdentity(ctx);
    const { ClusterNet } = await import('./cluster-net.ts');
    if (ctx.stopping) return;
    ctx.net ??= await ClusterNet.start({ dataDir: ctx.opts.dataDir, nodeKeys: ctx.atRest?.nodeKeyStore(), ...ctx.addrs, isRemoved: (id) => ctx.isRemoved(id), log: ctx.log });
    const net = ctx.net;
    if (ctx.stopping) return void (await net.stop());
    net.isRemoved = (id) => ctx.isRemoved(id);
    if (!net.identity) await net.authenticate(membership);
    await this.onUp(net, membership);
    ctx.log(`cluster network: listening on ${formatHostPort(ctx.addrs.listen)}, advertised as ${ctx.advertised} (${net.node.peerId})`);
  }
}

/**
 * A cluster made here without a root CA gets one (and tokens), and this first manager its
 * certificate and cluster.json. Runs before the network comes up; GET /swarm waits for it.
 */
async function ensureIdentity(ctx: DaemonContext): Promise<Membership> {
  if (ctx.membership) return ctx.membership;
  const cluster = currentCluster(ctx.store);
  if (!cluster) throw new UnavailableError('this node is not in a cluster');
  const [{ makeClusterIdentity, recordTlsInfo }, { loadOrCreateNodeKey }] = await Promise.all([import('./ca-service.ts'), import('../net/identity.ts')]);
  const key = await loadOrCreateNodeKey(ctx.opts.dataDir, ctx.atRest?.nodeKeyStore());
  const { identity, membership, tlsInfo } = await makeClusterIdentity(cluster, ctx.nodeId, key.publicKey.raw, ctx.opts.externalCa);
  if (!cluster.RootCA) {
    await ctx.store.update((tx) => {
      const c = tx.get('clusters', cluster.ID);
      if (c && !c.RootCA) tx.update('clusters', { ...c, RootCA: identity.RootCA, JoinTokens: identity.JoinTokens });
    });
  }
  await recordTlsInfo(ctx.store, ctx.nodeId, tlsInfo);
  ctx.saveMembership(membership);
  ctx.membership = membership;
  return membership;
}
