/**
 * Renew this host's certificate at 50–80 % of its life: a manager issues it from the cluster CA
 * itself, a worker asks the managers it knows. A failed attempt is retried a minute later.
 * Started once the cluster network is up (the certificate is the network's).
 */
import { errorMessage, UnavailableError } from '../lib/errors.ts';
import type { DaemonContext } from './context.ts';
import type { Service } from '../lib/lifecycle.ts';

export class CertRenewal implements Service {
  readonly name = 'cert-renewal';
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly ctx: DaemonContext) {}

  start(): Promise<void> {
    return this.#schedule();
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
  }

  #urgent: Promise<void> | null = null;
  #lastUrgentMs = 0;

  /**
   * Renew now, out of schedule (the cluster's roots changed): at most one at a time and one a
   * second, since every heartbeat ack asks again until this host trusts what the cluster does.
   */
  renewSoon(why: string): void {
    if (this.#urgent || this.ctx.stopping || Date.now() - this.#lastUrgentMs < 1000) return;
    this.#lastUrgentMs = Date.now();
    this.ctx.log(`certificate renewal now: ${why}`);
    this.#urgent = this.#renewNow()
      .then(() => this.#schedule())
      .catch((err) => this.ctx.log(`certificate renewal failed: ${errorMessage(err)}; the next heartbeat asks again`))
      .finally(() => {
        this.#urgent = null;
      });
  }

  async #schedule(retryMs?: number): Promise<void> {
    const { renewalDelayMs, MAX_TIMER_MS } = await import('./ca-service.ts');
    const id = this.ctx.net?.identity;
    if (!id || this.ctx.stopping) return;
    const wait = retryMs ?? renewalDelayMs(id.notBefore, id.notAfter, Date.now(), Math.random);
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      if (this.ctx.stopping) return;
      if (retryMs === undefined && wait > MAX_TIMER_MS) return void this.#schedule(); // far away: wait again
      void this.#renewNow().then(
        () => this.#schedule(),
        (err) => {
          this.ctx.log(`certificate renewal failed: ${errorMessage(err)}; retrying in a minute`);
          return this.#schedule(60_000);
        },
      );
    }, Math.min(wait, MAX_TIMER_MS));
  }

  async #renewNow(): Promise<void> {
    const { membership: m, net, manager } = this.ctx;
    if (!m || !net?.identity) return;
    if (m.Role === 'manager' && manager?.ca) {
      const issued = await manager.ca.renew(net.identity, net.key.publicKey.raw);
      await net.adopt(issued.identity, m, issued.trustPem === m.RootCA ? undefined : issued.trustPem);
    } else {
      const failures: string[] = [];
      let done = false;
      for (const a of [...new Set([...m.Managers.map((x) => x.Addr), ...this.ctx.sessionManagers])].filter((x) => x !== this.ctx.advertised)) {
        try {
          await net.renewFrom(a, m);
          done = true;
          break;
        } catch (err) {
          failures.push(`${a}: ${errorMessage(err)}`);
        }
      }
      if (!done) throw new UnavailableError(`no manager renewed the certificate (${failures.join('; ') || 'no manager known'})`);
    }
    this.ctx.saveMembership(m);
    this.ctx.log(`certificate renewed: valid until ${new Date(net.identity!.notAfter).toISOString()}`);
  }
}
