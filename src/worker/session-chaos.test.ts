/**
 * Seeded random runs of a dispatcher and two agents: tasks come and go, desired states change,
 * connections are cut. Invariants: a task's stored status never moves backwards, and once things
 * calm down every task is where its desired state says and every node is ready again. Random
 * choices come from the seed; only the file system's timing is real.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMockExecutor, ManualClock, newMockRegistry } from '../../plugins/mock/index.ts';
import { ExecutorCatalog } from '../executor/catalog.ts';
import { type Conn, memoryConnPair } from '../manager/dispatcher/conn.ts';
import { Dispatcher } from '../manager/dispatcher/dispatcher.ts';
import { addNode, addTasks, changeTask, description, makeTask, waitFor } from '../manager/dispatcher/testkit.ts';
import { memoryStore } from '../store/index.ts';
import { stateRank, type Task, type TaskState } from '../types/index.ts';
import { Agent } from './agent.ts';
import { seededRandom as rng } from '../lib/rng.ts';


const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

async function run(seed: number): Promise<void> {
  const rand = rng(seed);
  const dir = mkdtempSync(join(tmpdir(), `shoal-chaos-${seed}-`));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const store = memoryStore();
  const clock = new ManualClock(0); // one clock for all: time only moves when the test says
  const dispatcher = new Dispatcher({ store, clock, random: rand });
  dispatcher.start();
  cleanups.push(() => dispatcher.stop());

  const violations: string[] = [];
  store.watch((ev) => {
    if (ev.kind !== 'update' || ev.table !== 'tasks') return;
    const [a, b] = [(ev.old as Task).Status.State, (ev.object as Task).Status.State];
    if (stateRank(b) < stateRank(a)) violations.push(`seed ${seed}: task ${ev.object.ID} went ${a} → ${b}`);
  });

  const nodes: string[] = [];
  const conns = new Map<string, Conn[]>();
  for (let i = 0; i < 2; i++) {
    const nodeId = await addNode(store, `node-${i}`);
    nodes.push(nodeId);
    conns.set(nodeId, []);
    const agent = new Agent({
      nodeId,
      dataDir: join(dir, nodeId),
      catalog: new ExecutorCatalog([createMockExecutor({ clock, registry: newMockRegistry() })]),
      connect: async () => {
        const [w, m] = memoryConnPair({ chunkBytes: 1 + Math.floor(rand() * 200) });
        dispatcher.accept(m);
        conns.get(nodeId)!.push(w);
        return w;
      },
      description: () => description(nodeId),
      clock,
      random: rand,
      backoff: { initialMs: 5, maxMs: 20 },
    });
    await agent.start();
    cleanups.push(() => agent.stop());
  }
  const settle = async () => { for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r)); };

  const ids: string[] = [];
  for (let step = 0; step < 120; step++) {
    const r = rand();
    if (r < 0.3) {
      const [t] = await addTasks(store, [makeTask(nodes[Math.floor(rand() * nodes.length)]!, {
        spec: { Runtime: 'mock', MockSpec: rand() < 0.3 ? { RunFor: Math.floor(rand() * 50) * 1e6, ExitCode: rand() < 0.5 ? 0 : 1 } : {} },
      })]);
      ids.push(t!.ID);
    } else if (r < 0.5 && ids.length > 0) {
      const id = ids[Math.floor(rand() * ids.length)]!;
      const next: TaskState = rand() < 0.7 ? 'shutdown' : 'remove';
      await changeTask(store, id, (t) => (stateRank(t.DesiredState) < stateRank(next) ? { ...t, DesiredState: next } : t)).catch(() => {});
    } else if (r < 0.6) {
      const list = conns.get(nodes[Math.floor(rand() * nodes.length)]!)!;
      list.at(-1)?.close('chaos: connection cut');
    } else if (r < 0.63) {
      clock.advance(3_500); // a stall past the heartbeat deadline: sessions expire, nodes go down
    } else {
      clock.advance(Math.floor(rand() * 30));
    }
    await settle();
  }

  // Calm: let reconnects happen, heartbeats flow, and runs finish. Task dirs are real (file system
  // work takes real time), so this phase is bounded by the wall clock, not by a number of turns.
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    clock.advance(10);
    await new Promise((r) => setTimeout(r, 1));
    const done = ids.every((id) => {
      const t = store.get('tasks', id)!;
      if (stateRank(t.DesiredState) >= stateRank('shutdown')) return stateRank(t.Status.State) > stateRank('running');
      return t.Status.State === 'running' || stateRank(t.Status.State) > stateRank('running');
    });
    if (done && dispatcher.sessions().length === nodes.length) break;
  }
  expect(violations).toEqual([]);
  await waitFor(() => dispatcher.sessions().length === nodes.length, `seed ${seed}: both nodes connected`);
  for (const id of ids) {
    const t = store.get('tasks', id)!;
    const where = `seed ${seed}: task ${id} desired ${t.DesiredState} is ${t.Status.State}`;
    if (stateRank(t.DesiredState) >= stateRank('shutdown')) expect(stateRank(t.Status.State), where).toBeGreaterThan(stateRank('running'));
    else expect(['running', 'complete', 'failed'], where).toContain(t.Status.State);
  }
  for (const n of nodes) expect(store.get('nodes', n)!.Status.State).toBe('ready');
}

describe('dispatcher and agents under random changes and cuts', () => {
  for (let seed = 1; seed <= 12; seed++) test(`seed ${seed}`, () => run(seed), 20_000);
});
