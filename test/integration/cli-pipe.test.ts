/**
 * A CLI whose reader goes away (`shoal service logs -f web | head`) ends at once, quietly, with the
 * status of a Unix tool killed by SIGPIPE (141), instead of printing the write error and following on.
 */
import { expect, test } from 'bun:test';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { SHOAL, tempDaemon, waitFor } from '../harness/index.ts';

test('service logs -f into a pipe that closes: exit 141, nothing on stderr', async () => {
  await using d = await tempDaemon();
  await d.start();
  await d.ok('service', 'create', '--detach', '--name', 'talk', '--', '/bin/sh', '-c', 'while true; do echo hello; sleep 0.05; done');
  await waitFor('a first log line', async () => (await d.cli('service', 'logs', 'talk')).stdout.includes('hello'), 20_000);
  const errFile = join(d.dataDir, 'cli.err');
  // bash waits for the whole pipeline: without the fix the CLI kept following and this never returned.
  const p = Bun.spawn(['bash', '-c', '"$0" service logs -f talk 2>"$1" | head -n 2 >/dev/null; echo "${PIPESTATUS[0]}"', SHOAL, errFile], { env: d.env, stdout: 'pipe' });
  const [out] = await Promise.all([new Response(p.stdout).text(), p.exited]);
  expect(out.trim()).toBe('141');
  expect(readFileSync(errFile, 'utf8')).toBe('');
}, 60_000);
