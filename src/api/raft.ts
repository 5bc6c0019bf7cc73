/**
 * `GET /raft`: this manager's Raft replica (term, commit and applied index, the members, and on the
 * leader each member's progress). Docker's API has no such route: its health shows only through
 * `ManagerStatus.Reachability`; the web UI and operators want the numbers behind it. Read-only.
 */
import { Hono } from 'hono';
import { UnavailableError } from '../lib/errors.ts';
import type { ApiDeps } from './deps.ts';

export function raftRoutes(deps: ApiDeps): Hono {
  const app = new Hono();
  app.get('/raft', (c) => {
    const s = deps.raftStatus?.();
    if (!s) throw new UnavailableError('this node holds no Raft replica: ask a manager');
    return c.json({
      NodeID: deps.nodeId() ?? '',
      Role: s.role,
      Leader: s.leader ?? '',
      Term: s.term,
      CommitIndex: s.commit,
      AppliedIndex: s.applied,
      LastIndex: s.lastIndex,
      SnapshotIndex: s.snapshotIndex,
      Voters: s.voters,
      Learners: s.learners,
      Progress: Object.fromEntries(Object.entries(s.progress).map(([id, p]) => [id, { Match: p.match, RecentActive: p.recentActive, Learner: p.learner }])),
    });
  });
  return app;
}
