/**
 * The chaos suite's clients: each loops over reads of a service (`GET /services/{id}`: its `chaos`
 * label and Version.Index) and compare-and-set writes (`POST /services/{id}/update?version=N` with
 * the spec just read, one token appended to the label), on a manager picked at random, recording
 * every operation with its invocation and completion times (performance.now(), monotonic) and its
 * outcome: ok, mismatch (409 update out of sequence), fail (definitely not applied: 400, 404, or the
 * request never left), or unknown
 * (a timeout, a reset, a 503 or 500: it may still take effect). Choices come from the seed.
 */
import { seededRandom } from '../../src/lib/rng.ts';
import type { Daemon } from '../harness/index.ts';
import type { CasOp, CasOutput } from './linearizability.ts';
import { pick } from './schedule.ts';

export const LABEL = 'chaos';

export interface RegisterKey {
  /** The service's name: the key in the history. */
  name: string;
  id: string;
}

export interface WorkloadOptions {
  seed: number;
  clients: number;
  managers: Daemon[];
  keys: RegisterKey[];
  /** Share of loop turns that write after their read. */
  writeShare?: number;
  readTimeoutMs?: number;
  writeTimeoutMs?: number;
  /** The time base of the history (default performance.now). */
  now?: () => number;
}

/** Errors that mean the request never reached a daemon (nothing was sent). */
const NEVER_SENT = new Set(['ENOENT', 'ECONNREFUSED', 'ConnectionRefused', 'FailedToOpenSocket']);

export class Workload {
  readonly ops: CasOp[] = [];
  private stopping = false;
  private loops: Promise<void>[] = [];
  private readonly now: () => number;

  constructor(private readonly o: WorkloadOptions) {
    if (o.keys.length === 0) throw new Error('keys: the workload needs at least one service');
    this.now = o.now ?? (() => performance.now());
  }

  start(): void {
    for (let c = 0; c < this.o.clients; c++) this.loops.push(this.loop(c));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }

  /** One linearizable read by `client` of `key` on `m`, recorded; null when it did not answer. */
  async read(client: number, key: RegisterKey, m: Daemon, timeoutMs = this.o.readTimeoutMs ?? 4_000): Promise<{ value: string; version: number; spec: any } | null> {
    const call = this.now();
    try {
      const r = await m.api(`/services/${key.id}`, { signal: AbortSignal.timeout(timeoutMs) });
      if (!r.ok) {
        await r.body?.cancel();
        return null; // a read that failed tells nothing: left out of the history
      }
      const svc = (await r.json()) as { Spec: any; Version: { Index: number } };
      const ret = this.now();
      const out = { value: String(svc.Spec.Labels?.[LABEL] ?? ''), version: svc.Version.Index };
      this.ops.push({ client, key: key.name, input: { f: 'read' }, output: out, call, ret });
      return { ...out, spec: svc.Spec };
    } catch {
      return null;
    }
  }

  /** One CAS write: the spec read at `version`, the label set to `value`. */
  async cas(client: number, key: RegisterKey, m: Daemon, spec: any, version: number, value: string): Promise<CasOutput> {
    const body = JSON.stringify({ ...spec, Labels: { ...spec.Labels, [LABEL]: value } });
    const call = this.now();
    let output: CasOutput;
    try {
      const r = await m.api(`/services/${key.id}/update?version=${version}`, {
        method: 'POST', body, headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(this.o.writeTimeoutMs ?? 6_000),
      });
      const text = r.ok ? '' : await r.text();
      output = r.ok ? 'ok' : r.status === 409 && text.includes('out of sequence') ? 'mismatch' : r.status === 400 || r.status === 404 ? 'fail' : 'unknown';
      if (r.ok) await r.body?.cancel();
    } catch (e) {
      output = NEVER_SENT.has((e as { code?: string }).code ?? '') ? 'fail' : 'unknown';
    }
    this.ops.push({ client, key: key.name, input: { f: 'cas', expect: version, value }, output, call, ret: output === 'unknown' ? Infinity : this.now() });
    return output;
  }

  private async loop(client: number): Promise<void> {
    const rnd = seededRandom((this.o.seed * 977 + client * 7919 + 1) | 0);
    let n = 0;
    while (!this.stopping) {
      const key = pick(this.o.keys, rnd());
      const up = this.o.managers.filter((m) => m.isRunning);
      const writes = rnd() < (this.o.writeShare ?? 0.5);
      const m1 = pick(up.length ? up : this.o.managers, rnd());
      const m2 = pick(up.length ? up : this.o.managers, rnd());
      const seen = await this.read(client, key, m1);
      if (seen && writes && !this.stopping) {
        const token = `${client}.${n++}`;
        await this.cas(client, key, m2, seen.spec, seen.version, seen.value ? `${seen.value} ${token}` : token);
      }
      // A client's think time: keeps 8 daemons, the checker and the rest of the machine within 2 cores.
      await Bun.sleep(20 + rnd() * 80);
    }
  }
}
