// Start-up: rebuild the core's MemoryStorage from the WAL, or bootstrap a founding member.
import { type ConfChange, type ConfState, type Snapshot, MemoryStorage, encodeConfChange } from '../raft/index.ts';
import type { Disk } from './disk.ts';
import { Wal } from './wal.ts';

export interface Recovered {
  wal: Wal;
  storage: MemoryStorage;
  conf: ConfState;
  snapshot: Snapshot | null;
}

export function recover(disk: Disk, dir: string, bootstrap: ConfState | undefined, segmentBytes?: number): Recovered {
  const { wal, state } = Wal.open(disk, dir, { segmentBytes });
  let conf = state.conf;
  const fresh = !conf && !state.snapshot && state.entries.length === 0 && state.hardState.term === 0;
  if (fresh && bootstrap) {
    // Like etcd: the initial configuration is written as committed conf entries at term 1, the same
    // on every founding member, so a node that joins later learns the founders from the log.
    conf = bootstrap;
    const cc: ConfChange[] = [
      ...conf.voters.map((node): ConfChange => ({ type: 'addVoter', node })),
      ...conf.learners.map((node): ConfChange => ({ type: 'addLearner', node })),
    ];
    state.entries = cc.map((c, i) => ({ term: 1, index: i + 1, type: 'conf', data: encodeConfChange(c) }));
    state.hardState = { term: 1, vote: null, commit: cc.length };
    wal.saveConfState(conf);
    wal.save(state.hardState, state.entries);
  }
  conf ??= { voters: [], learners: [] };
  const storage = MemoryStorage.withConf(conf);
  if (state.snapshot) storage.applySnapshot(state.snapshot);
  storage.setConfState(conf);
  storage.append(state.entries);
  storage.setHardState(state.hardState);
  return { wal, storage, conf, snapshot: state.snapshot };
}
