import { expect, test } from 'bun:test';
import { join } from 'node:path';
import madge from 'madge';

// Import cycles make module load order matter and tangle concepts that should depend one way (the
// store on the transaction, the Raft class on its role modules). Type-only imports count too: a
// cycle through `import type` is the same tangle of concepts, only invisible at run time.
const root = join(import.meta.dir, '..');

test('no import cycles in src/ or plugins/', async () => {
  // The TypeScript parser under madge warns, once per file, about a property its own detective
  // still reads; that says nothing about our code.
  const quiet = process.noDeprecation;
  process.noDeprecation = true;
  let graph: madge.MadgeInstance;
  try {
    // Our imports name their files with the .ts extension, so no tsconfig is needed to resolve
    // them (and without one madge runs several times faster).
    graph = await madge([join(root, 'src'), join(root, 'plugins')], {
      baseDir: root,
      fileExtensions: ['ts'],
      detectiveOptions: { ts: { skipTypeImports: false, skipAsyncImports: false } },
    });
  } finally {
    process.noDeprecation = quiet;
  }
  // A graph madge failed to resolve has no edges and so no cycles: check it saw what it should.
  expect(graph.obj()['src/store/store.ts']).toContain('src/store/tx.ts');
  expect(graph.warnings().skipped.filter((f) => !f.startsWith('bun:'))).toEqual([]);

  const cycles = graph.circular().map((c) => c.join(' > '));
  if (cycles.length) console.error(`import cycles:\n  ${cycles.join('\n  ')}`);
  expect(cycles).toEqual([]);
});
