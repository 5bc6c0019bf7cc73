/** The one executable: argument parsing → command; nothing else. */
// The Reflect polyfill that @peculiar/x509 (the cluster CA, loaded on demand) checks for when it is
// imported: in the compiled bundle it must be in place before any lazily imported module evaluates.
import 'reflect-metadata';
import { paceCollector } from './lib/gc-pacing.ts';

const SHIM_ARG = '__process-shim';

/** Exit once what was written to stdout/stderr has gone out (pipes may be asynchronous). */
async function exit(code: number): Promise<never> {
  await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((r) => s.write('', () => r()))));
  process.exit(code);
}

const argv = process.argv.slice(2);
// The daemon's collector paced for a server, not for the machine's RAM (src/lib/gc-pacing.ts).
paceCollector(argv);
if (argv[0] === SHIM_ARG) {
  // The process executor's detached shim: keep its startup free of the CLI and the daemon.
  const { runShim } = await import('../plugins/process/shim.ts');
  await exit(await runShim(argv));
} else {
  // A reader that went away (`shoal service logs -f web | head`): end as a Unix tool killed by SIGPIPE
  // would (128 + 13), quietly, instead of printing the write error and following on.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(141);
  });
  const { runCli } = await import('./cli/index.ts');
  await exit(await runCli(argv));
}
