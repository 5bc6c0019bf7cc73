import { describe, expect, test } from 'bun:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCompose, parseEnvFile } from './load.ts';

describe('loadCompose', () => {
  test('later files merge over earlier ones; .env beside the first file, the shell winning', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shoal-load-'));
    writeFileSync(join(dir, '.env'), 'TAG=1.0\nREPLICAS=2\n');
    writeFileSync(join(dir, 'a.yml'), 'services:\n  web:\n    image: nginx:${TAG}\n    deploy: { replicas: \"${REPLICAS}\", labels: { a: "1" } }\n');
    writeFileSync(join(dir, 'b.yml'), 'services:\n  web:\n    deploy: { labels: { b: "2" } }\n    command: [x, "$UNSET"]\n');
    const l = loadCompose([join(dir, 'a.yml'), join(dir, 'b.yml')], { REPLICAS: '5' });
    expect(l.tree).toEqual({ services: { web: { image: 'nginx:1.0', deploy: { replicas: '5', labels: { a: '1', b: '2' } }, command: ['x', ''] } } });
    expect(l.unset).toEqual(['UNSET']);
    expect(l.dir).toBe(dir);
    writeFileSync(join(dir, 'o.yml'), 'services: { w: { secrets: [{ mode: 0440 }, { mode: 440 }] } }\n');
    expect(loadCompose([join(dir, 'o.yml')], {}).tree).toEqual({ services: { w: { secrets: [{ mode: 0o440 }, { mode: 440 }] } } });
  });

  test('errors name the file', () => {
    expect(() => loadCompose(['/nonexistent/x.yml'], {})).toThrow('cannot read compose file /nonexistent/x.yml');
    const dir = mkdtempSync(join(tmpdir(), 'shoal-load-'));
    writeFileSync(join(dir, 'bad.yml'), 'services: [\n');
    expect(() => loadCompose([join(dir, 'bad.yml')], {})).toThrow(join(dir, 'bad.yml'));
    writeFileSync(join(dir, 'list.yml'), '- a\n');
    expect(() => loadCompose([join(dir, 'list.yml')], {})).toThrow('expected a mapping at the top');
  });

  test('env files: comments, export, quotes; a bad line is named', () => {
    expect(parseEnvFile('# c\nexport A=1\nB="two words"\n\n', 'f')).toEqual({ A: '1', B: 'two words' });
    expect(() => parseEnvFile('oops', 'f.env')).toThrow('f.env line 1');
  });
});
