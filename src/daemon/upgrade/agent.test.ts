import { afterEach, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VERSION } from '../../lib/version.ts';
import { UpgradeAgent } from './agent.ts';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

function agent(): { agent: UpgradeAgent; restarts: number[] } {
  const dataDir = mkdtempSync(join(tmpdir(), 'shoal-upgrade-agent-'));
  dirs.push(dataDir);
  const restarts: number[] = [];
  return { agent: new UpgradeAgent({ dataDir, log: () => {}, restart: () => restarts.push(1) }), restarts };
}

test('a rollback to the version this node already runs is done already (asked again by a new leader): no error, no restart', async () => {
  const { agent: a, restarts } = agent();
  await a.rollback(VERSION);
  expect(restarts).toEqual([]);
});

test('a rollback to another version is still attempted (here refused: the tests run from source, not a compiled shoal)', async () => {
  const { agent: a, restarts } = agent();
  await expect(a.rollback('0.0.1')).rejects.toThrow(/runs from source/);
  expect(restarts).toEqual([]);
});
