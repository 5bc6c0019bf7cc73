/** The read-only sections, redrawn whole from each snapshot of the cluster. */
import { ago, fill, h, short, table } from './dom.ts';
import { modeOf, nodeName, type NamedObj, type NodeObj, type Snapshot } from './types.ts';

export interface Handlers {
  selectService(id: string): void;
  setAvailability(node: NodeObj, availability: 'active' | 'pause' | 'drain'): void;
}

const stateClass = (s: string) => (s === 'running' || s === 'ready' || s === 'reachable' || s === 'completed' ? 'ok' : s === 'failed' || s === 'down' || s === 'unreachable' || s === 'rejected' ? 'bad' : 'warn');

export function renderRaft(s: Snapshot): void {
  const managers = s.nodes.filter((n) => n.ManagerStatus);
  const reachable = managers.filter((n) => n.ManagerStatus!.Reachability === 'reachable').length;
  const quorum = Math.floor(managers.length / 2) + 1;
  const leader = managers.find((n) => n.ManagerStatus!.Leader);
  const healthy = !!leader && reachable >= quorum;
  fill(
    'raft-body',
    h('div', {},
      h('p', { id: 'raft-summary' },
        h('span', { class: healthy ? 'ok' : 'bad' }, healthy ? 'healthy' : 'degraded'),
        `: leader ${leader ? nodeName(leader) : 'none'}, ${reachable} of ${managers.length} managers reachable (quorum needs ${quorum})`),
      s.raft ? h('p', { id: 'raft-numbers', class: 'mono' }, `term ${s.raft.Term} · commit ${s.raft.CommitIndex} · applied ${s.raft.AppliedIndex} · last ${s.raft.LastIndex} (as ${nodeName(s.nodes.find((n) => n.ID === s.raft!.NodeID))} sees it)`) : null,
      s.info.Swarm.Error ? h('p', { class: 'bad' }, s.info.Swarm.Error) : null,
      table(['manager', 'address', 'leader', 'reachability', 'match'], managers.map((n) => {
        // Each member's replicated index, known only when the page is served by the leader.
        const p = s.raft?.Progress[n.ID];
        return h('tr', {}, h('td', {}, nodeName(n)), h('td', { class: 'mono' }, n.ManagerStatus!.Addr), h('td', {}, n.ManagerStatus!.Leader ? 'leader' : ''),
          h('td', { class: stateClass(n.ManagerStatus!.Reachability) }, n.ManagerStatus!.Reachability), h('td', { class: 'mono' }, p ? String(p.Match) : ''));
      })),
    ),
  );
}

export function renderNodes(s: Snapshot, on: Handlers): void {
  fill('nodes-body', table(['name', 'id', 'role', 'status', 'availability', ''], s.nodes.map((n) =>
    h('tr', { 'data-node-id': n.ID, 'data-node-name': nodeName(n) },
      h('td', {}, nodeName(n)), h('td', { class: 'mono' }, short(n.ID)), h('td', {}, n.Spec.Role),
      h('td', { class: stateClass(n.Status.State), title: n.Status.Message ?? '' }, n.Status.State),
      h('td', { class: 'availability' }, n.Spec.Availability),
      h('td', {},
        n.Spec.Availability === 'active'
          ? h('button', { class: 'drain', onclick: () => on.setAvailability(n, 'drain') }, 'drain')
          : h('button', { class: 'activate', onclick: () => on.setAvailability(n, 'active') }, 'activate')),
    ))));
}

export function renderServices(s: Snapshot, selected: string | null, on: Handlers): void {
  fill('services-body', table(['name', 'id', 'mode', 'replicas', 'runtime / image', 'update', ''], s.services.map((svc) => {
    const st = svc.ServiceStatus;
    const tt = svc.Spec.TaskTemplate;
    const mode = modeOf(svc.Spec);
    const u = svc.UpdateStatus;
    return h('tr', { 'data-service-id': svc.ID, 'data-service-name': svc.Spec.Name, class: svc.ID === selected ? 'selected' : '' },
      h('td', {}, svc.Spec.Name), h('td', { class: 'mono' }, short(svc.ID)), h('td', {}, mode),
      h('td', { class: 'replicas' }, st ? `${st.RunningTasks}/${st.DesiredTasks}` : mode === 'replicated' ? String(svc.Spec.Mode?.Replicated?.Replicas ?? 1) : ''),
      h('td', { class: 'mono' }, tt.ContainerSpec?.Image ?? `${tt.Runtime ?? ''}${tt.ProcessSpec?.Command ? `: ${tt.ProcessSpec.Command.join(' ')}` : ''}`),
      h('td', { class: 'update-state' }, u?.State ? h('span', { class: u.State.includes('rollback') || u.State === 'paused' ? 'warn' : u.State === 'completed' ? 'ok' : '' }, u.State) : ''),
      h('td', {}, h('button', { class: 'open', onclick: () => on.selectService(svc.ID) }, 'open')),
    );
  }), 'no services'));
}

export function renderTasks(s: Snapshot): void {
  const services = new Map(s.services.map((x) => [x.ID, x.Spec.Name]));
  const nodes = new Map(s.nodes.map((n) => [n.ID, nodeName(n)]));
  // The newest first, and no more than a page of them: the history of a busy cluster is long.
  const tasks = [...s.tasks].sort((a, b) => (b.Status.Timestamp ?? '').localeCompare(a.Status.Timestamp ?? '')).slice(0, 200);
  fill('tasks-body', table(['task', 'service', 'node', 'desired', 'state', 'since', 'message'], tasks.map((t) =>
    h('tr', { 'data-task-id': t.ID },
      h('td', { class: 'mono' }, `${services.get(t.ServiceID) ?? short(t.ServiceID)}.${t.Slot ?? short(t.NodeID ?? '')}`),
      h('td', {}, services.get(t.ServiceID) ?? short(t.ServiceID)), h('td', {}, nodes.get(t.NodeID ?? '') ?? ''),
      h('td', {}, t.DesiredState), h('td', { class: stateClass(t.Status.State) }, t.Status.State), h('td', {}, ago(t.Status.Timestamp)),
      h('td', {}, t.Status.Err || t.Status.Message || ''),
    )), 'no tasks'));
}

export function renderNetworks(s: Snapshot): void {
  fill('networks-body', table(['name', 'id', 'driver', 'scope', 'subnet'], s.networks.map((n) =>
    h('tr', {}, h('td', {}, n.Name), h('td', { class: 'mono' }, short(n.Id ?? n.ID ?? '')), h('td', {}, n.Driver ?? ''), h('td', {}, n.Scope ?? ''),
      h('td', { class: 'mono' }, (n.IPAM?.Config ?? []).map((c) => c.Subnet).filter(Boolean).join(', '))),
  ), 'no networks'));
}

/** Names and dates only: the page never asks for a secret's data (the API does not give it either). */
export function renderNamed(id: 'secrets' | 'configs', list: NamedObj[] | null): void {
  if (list === null) return fill(`${id}-body`, h('p', { class: 'muted' }, 'not available on this daemon'));
  fill(`${id}-body`, table(['name', 'id', 'created', 'updated'], list.map((x) =>
    h('tr', {}, h('td', {}, x.Spec.Name), h('td', { class: 'mono' }, short(x.ID)), h('td', {}, ago(x.CreatedAt)), h('td', {}, ago(x.UpdatedAt))),
  ), `no ${id}`));
}
