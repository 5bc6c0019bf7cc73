/** Runs the shim directly (development and tests): `bun plugins/process/shim-entry.ts <task-dir>`. */
import { runShim } from './shim.ts';

process.exit(await runShim(process.argv.slice(2)));
