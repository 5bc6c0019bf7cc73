import { expect, test } from 'bun:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../test/compliance/fixtures.ts';
import { resolveUser } from './user.ts';

test('resolves names, uids and groups; unknown names are named in the error', () => {
  using dir = tempDir();
  const files = { passwd: join(dir.path, 'passwd'), group: join(dir.path, 'group') };
  writeFileSync(files.passwd, 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh\n');
  writeFileSync(files.group, 'root:x:0:\nstaff:x:50:app\n');
  expect(resolveUser('app', files)).toEqual({ uid: 1000, gid: 1001, home: '/home/app', name: 'app' });
  expect(resolveUser('app:staff', files)).toMatchObject({ uid: 1000, gid: 50 });
  expect(resolveUser('1000:7', files)).toMatchObject({ uid: 1000, gid: 7 });
  expect(resolveUser('4242', files)).toEqual({ uid: 4242, gid: 0 });
  expect(() => resolveUser('bob', files)).toThrow('ProcessSpec.User: no user "bob"');
  expect(() => resolveUser('app:nogroup', files)).toThrow('ProcessSpec.User: no group "nogroup"');
});
