import { describe, expect, test } from 'bun:test';
import { parseArgs } from './args.ts';
import { parseFileRef } from './secret-opts.ts';
import { applyServiceUpdate, buildServiceSpec, CREATE_OPTIONS, UPDATE_OPTIONS } from './service-opts.ts';

const create = (...argv: string[]) => buildServiceSpec(parseArgs(argv, CREATE_OPTIONS, { stopAtPositional: true }), {});
const update = (spec: any, ...argv: string[]) => applyServiceUpdate(spec, parseArgs(argv, UPDATE_OPTIONS), {});

describe('--secret / --config', () => {
  test('short and long forms', () => {
    expect(parseFileRef('db', 'secret')).toEqual({ source: 'db' });
    expect(parseFileRef('source=db,target=pw,uid=1000,gid=10,mode=0400', 'secret')).toEqual({ source: 'db', file: { Name: 'pw', UID: '1000', GID: '10', Mode: 0o400 } });
    expect(parseFileRef('src=db,mode=600', 'secret')).toEqual({ source: 'db', file: { Name: 'db', Mode: 0o600 } });
    expect(() => parseFileRef('target=x', 'secret')).toThrow('source=NAME is required');
    expect(() => parseFileRef('source=a,mode=999', 'secret')).toThrow('mode must be octal');
    expect(() => parseFileRef('source=a,foo=1', 'config')).toThrow('unknown key "foo"');
  });

  test('land in the runtime spec on create; update adds, replaces and removes by name', () => {
    const spec = create('--secret', 'db', '--config', 'source=app,target=app.conf', '/bin/true');
    expect(spec.TaskTemplate.ProcessSpec!.Secrets).toEqual([{ SecretID: '', SecretName: 'db' }]);
    expect(spec.TaskTemplate.ProcessSpec!.Configs).toEqual([{ ConfigID: '', ConfigName: 'app', File: { Name: 'app.conf' } }]);
    const c = create('--runtime', 'container', '--secret', 'db', 'busybox');
    expect(c.TaskTemplate.ContainerSpec!.Secrets).toEqual([{ SecretID: '', SecretName: 'db' }]);
    const next = update(spec, '--secret-rm', 'db', '--secret-add', 'source=db2,target=db', '--config-rm', 'app');
    expect(next.TaskTemplate.ProcessSpec!.Secrets).toEqual([{ SecretID: '', SecretName: 'db2', File: { Name: 'db' } }]);
    expect(next.TaskTemplate.ProcessSpec!.Configs).toBeUndefined();
    expect(spec.TaskTemplate.ProcessSpec!.Secrets).toHaveLength(1); // the current spec is not touched
  });

  test('a plugin\'s runtime: into PluginSpec.<runtime>, beside its own fields', () => {
    const spec = create('--runtime', 'script', '--plugin-opt', 'Source=true', '--secret', 'db', '--config', 'app');
    expect(spec.TaskTemplate.PluginSpec).toEqual({ script: { Source: 'true', Secrets: [{ SecretID: '', SecretName: 'db' }], Configs: [{ ConfigID: '', ConfigName: 'app' }] } });
    const bare = create('--runtime', 'other', '--secret', 'db');
    expect(bare.TaskTemplate.PluginSpec).toEqual({ other: { Secrets: [{ SecretID: '', SecretName: 'db' }] } });
    const next = update(spec, '--secret-rm', 'db', '--config-rm', 'app', '--config-add', 'source=app2,target=app');
    expect(next.TaskTemplate.PluginSpec!.script).toEqual({ Source: 'true', Configs: [{ ConfigID: '', ConfigName: 'app2', File: { Name: 'app' } }] });
  });
});
