/**
 * The worker session's transport: this host's own dispatcher while it leads (msgpack frames over
 * an in-process pair), else a libp2p stream to the managers in the order of manager-order.ts.
 */
import { UnavailableError } from '../lib/errors.ts';
import { type Conn, memoryConnPair } from '../manager/dispatcher/conn.ts';
import { ManagerOrder, type SessionHint } from '../worker/manager-order.ts';
import type { DaemonContext } from './context.ts';

export function dispatcherLink(ctx: DaemonContext): (signal: AbortSignal, hint?: SessionHint) => Promise<Conn> {
  const picker = new ManagerOrder();
  return async (signal, hint = {}) => {
    const local = ctx.dispatcher;
    if (local) {
      const [workerEnd, managerEnd] = memoryConnPair();
      local.accept(managerEnd, { nodeId: ctx.nodeId });
      return workerEnd;
    }
    if (!ctx.net?.identity) throw new UnavailableError('the cluster network is not up yet');
    rememberManagers(ctx, ctx.sessionManagers);
    const known = [...new Set([...ctx.managerAddrs(), ...ctx.sessionManagers, ...(ctx.membership?.Managers ?? []).map((m) => m.Addr)])];
    const order = picker.next(known.filter((a) => a !== ctx.advertised), hint);
    return ctx.net.connector(() => order, (answered) => picker.answered(answered))(signal);
  };
}

/** Keep the managers the dispatcher pushed in cluster.json, so a restart can reach one of them. */
function rememberManagers(ctx: DaemonContext, pushed: string[]): void {
  const m = ctx.membership;
  if (!m || !pushed.length) return;
  const had = m.Managers.map((x) => x.Addr);
  if (pushed.length === had.length && pushed.every((a) => had.includes(a))) return;
  m.Managers = pushed.map((Addr) => ({ NodeID: m.Managers.find((x) => x.Addr === Addr)?.NodeID ?? '', Addr }));
  ctx.saveMembership(m);
}
