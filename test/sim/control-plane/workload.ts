/**
 * What the seed does to the cluster: service operations, as the API would write them (create;
 * update with PreviousSpec kept and UpdateStatus cleared; scale; remove), and faults: agent host
 * crashes and restarts, partitions of an agent from the managers, leader changes, drains.
 * Each fault heals on its own later, and everything heals at the end of the chaos phase.
 */
import { newId } from '../../../src/lib/ids.ts';
import { NS_PER_MS, type Service, type ServiceSpec, type UpdateConfig } from '../../../src/types/index.ts';
import { EPOCH_MS } from './net.ts';
import type { World } from './world.ts';

export interface Tally {
  creates: number;
  updates: number;
  scales: number;
  removes: number;
  crashes: number;
  partitions: number;
  leaderChanges: number;
  drains: number;
}

export const MAX_SERVICES = 5;

export class Workload {
  readonly tally: Tally = { creates: 0, updates: 0, scales: 0, removes: 0, crashes: 0, partitions: 0, leaderChanges: 0, drains: 0 };
  #names = 0;
  #version = 0;
  readonly #rng;

  constructor(private readonly w: World) {
    this.#rng = w.rng.fork();
  }

  /** One seeded action; called every few hundred ms of simulated time during the chaos phase. */
  act(): void {
    const r = this.#rng;
    const roll = r.next();
    if (roll < 0.55) return this.#serviceOp();
    if (roll < 0.67) return this.#crash();
    if (roll < 0.79) return this.#partition();
    if (roll < 0.87) return this.#leaderChange();
    return this.#drain();
  }

  /** End of the chaos phase: every agent up and reachable, a leader. Drained nodes stay drained. */
  heal(): void {
    const w = this.w;
    for (const l of w.links.values()) l.cut = false;
    for (const a of w.agents) if (!a.up) { w.log(`heal: ${a.nodeId} restarts`); a.boot(); }
  }

  // ------------------------------------------------------------------ services

  #serviceOp(): void {
    const w = this.w;
    if (w.electing) return; // no leader, no API
    const r = this.#rng;
    const services = w.store.list('services');
    const op = services.length === 0 ? 0 : services.length >= MAX_SERVICES ? r.range(1, 3) : r.range(0, 3);
    if (op === 0) return this.#create();
    const s = r.pick(services);
    if (op === 1) return this.#update(s);
    if (op === 2 && s.Spec.Mode?.Replicated) return this.#scale(s);
    if (op === 3 && r.chance(0.3)) return this.#remove(s);
    return this.#update(s);
  }

  #updateConfig(): UpdateConfig {
    const r = this.#rng;
    return {
      Parallelism: r.range(0, 3),
      Delay: r.range(0, 2) * 500 * NS_PER_MS,
      FailureAction: r.pick(['pause', 'continue', 'rollback'] as const),
      Monitor: r.range(1, 4) * 1000 * NS_PER_MS,
      MaxFailureRatio: r.pick([0, 0, 0.2, 0.5]),
      Order: r.pick(['stop-first', 'start-first'] as const),
    };
  }

  /** A template; one in four is "bad": its tasks fail 1–3 s after starting while chaos lasts. */
  #template(): ServiceSpec['TaskTemplate'] {
    const r = this.#rng;
    const bad = r.chance(0.25);
    return {
      Runtime: 'mock',
      MockSpec: bad ? { ExitCode: 1, RunFor: r.range(1000, 3000) * NS_PER_MS } : {},
      ForceUpdate: ++this.#version,
      RestartPolicy: { Condition: 'any', Delay: r.range(0, 2) * 1000 * NS_PER_MS },
    };
  }

  #create(): void {
    const w = this.w;
    const r = this.#rng;
    const name = `s${++this.#names}`;
    const global = r.chance(0.25);
    const spec: ServiceSpec = {
      Name: name,
      TaskTemplate: this.#template(),
      Mode: global ? { Global: {} } : { Replicated: { Replicas: r.range(1, 6) } },
      UpdateConfig: this.#updateConfig(),
      RollbackConfig: this.#updateConfig(),
    };
    const at = new Date(EPOCH_MS + w.nowMs).toISOString();
    const svc: Service = { ID: newId(), Version: { Index: 0 }, CreatedAt: at, UpdatedAt: at, Spec: spec, Endpoint: { Spec: { Mode: 'vip' } } };
    this.tally.creates++;
    w.log(`api: create ${name} ${global ? 'global' : `replicas ${spec.Mode!.Replicated!.Replicas}`}${spec.TaskTemplate.MockSpec?.ExitCode ? ' (bad template)' : ''}`);
    this.#write((tx) => tx.create('services', svc));
  }

  #update(s: Service): void {
    const r = this.#rng;
    const spec: ServiceSpec = { ...s.Spec, TaskTemplate: this.#template(), UpdateConfig: r.chance(0.5) ? this.#updateConfig() : s.Spec.UpdateConfig };
    const { UpdateStatus: _cleared, ...rest } = s;
    this.tally.updates++;
    const u = spec.UpdateConfig!;
    this.w.log(`api: update ${s.Spec.Name} (${u.Order}, parallelism ${u.Parallelism}, on failure ${u.FailureAction})${spec.TaskTemplate.MockSpec?.ExitCode ? ' (bad template)' : ''}`);
    this.#write((tx) => tx.update('services', { ...rest, PreviousSpec: s.Spec, Spec: spec }));
  }

  #scale(s: Service): void {
    const replicas = this.#rng.range(0, 7);
    this.tally.scales++;
    this.w.log(`api: scale ${s.Spec.Name} to ${replicas}`);
    this.#write((tx) => tx.update('services', { ...s, Spec: { ...s.Spec, Mode: { Replicated: { Replicas: replicas } } } }));
  }

  #remove(s: Service): void {
    this.tally.removes++;
    this.w.log(`api: remove ${s.Spec.Name}`);
    this.#write((tx) => tx.delete('services', s.ID));
  }

  /** A conflict (someone else wrote the object since it was read) is what a client would see: it is dropped. */
  #write(fn: Parameters<World['store']['update']>[0]): void {
    this.w.store.update(fn).catch((e) => this.w.log(`api: write refused: ${e instanceof Error ? e.message : e}`));
  }

  // ------------------------------------------------------------------ faults

  #crash(): void {
    const w = this.w;
    const r = this.#rng;
    const up = w.agents.filter((a) => a.up);
    if (up.length <= 2) return;
    const a = r.pick(up);
    this.tally.crashes++;
    w.log(`fault: ${a.nodeId} crashes`);
    w.links.get(a.nodeId)!.sever();
    w.links.get(a.nodeId)!.cut = false; // a fresh link for when it comes back
    a.crash();
    w.sim.after(r.range(1000, 20_000), () => { if (!a.up) { w.log(`fault: ${a.nodeId} restarts`); a.boot(); } });
  }

  #partition(): void {
    const w = this.w;
    const r = this.#rng;
    const a = r.pick(w.agents);
    const link = w.links.get(a.nodeId)!;
    if (link.cut) return;
    this.tally.partitions++;
    w.log(`fault: ${a.nodeId} partitioned from the managers`);
    link.sever();
    w.sim.after(r.range(500, 15_000), () => { if (link.cut) { w.log(`fault: ${a.nodeId} partition healed`); link.cut = false; } });
  }

  #leaderChange(): void {
    const w = this.w;
    if (w.electing) return;
    const r = this.#rng;
    const next = r.pick(w.managerIds.filter((m) => m !== w.leaderId));
    this.tally.leaderChanges++;
    w.log(`fault: leader ${w.leaderId} steps down`);
    w.elect(next, r.range(300, 5_000));
  }

  #drain(): void {
    const w = this.w;
    if (w.electing) return;
    const r = this.#rng;
    const nodes = w.store.list('nodes');
    const drained = nodes.filter((n) => n.Spec.Availability === 'drain');
    const n = r.pick(nodes);
    const drain = n.Spec.Availability !== 'drain';
    if (drain && drained.length >= nodes.length - 2) return;
    this.tally.drains++;
    w.log(`api: node ${n.ID} ${drain ? 'drain' : 'active'}`);
    this.#write((tx) => tx.update('nodes', { ...n, Spec: { ...n.Spec, Availability: drain ? 'drain' : 'active' } }));
  }
}
