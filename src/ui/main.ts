/** The web UI's entry: fetch a snapshot of the cluster whenever it may have changed, and draw it. */
import { ApiError, getJson, getOptional, post, watchCluster, type LiveMode } from './api.ts';
import { ServiceDetail } from './detail.ts';
import { fill, h } from './dom.ts';
import type { InfoObj, NamedObj, NetworkObj, NodeObj, RaftObj, ServiceObj, Snapshot, TaskObj } from './types.ts';
import { renderNamed, renderNetworks, renderNodes, renderRaft, renderServices, renderTasks, type Handlers } from './view.ts';

let snapshot: Snapshot | null = null;
let detail: ServiceDetail | null = null;
let running = false;
let again = false;

function showError(e: unknown): void {
  const el = document.getElementById('error')!;
  el.textContent = e instanceof Error ? e.message : String(e);
  el.classList.add('shown');
}

function clearError(): void {
  document.getElementById('error')!.classList.remove('shown');
}

async function load(): Promise<Snapshot> {
  const [info, nodes, services, tasks, networks, secrets, configs, raft] = await Promise.all([
    getJson<InfoObj>('/info'),
    getJson<NodeObj[]>('/nodes'),
    getJson<ServiceObj[]>('/services?status=1'),
    getJson<TaskObj[]>('/tasks'),
    getJson<NetworkObj[]>('/networks'),
    getOptional<NamedObj[]>('/secrets'),
    getOptional<NamedObj[]>('/configs'),
    // The numbers behind the health: a daemon without the route, or a manager without a replica yet, shows none.
    getOptional<RaftObj>('/raft').catch(() => null),
  ]);
  return { info, nodes, services, tasks, networks, secrets, configs, raft };
}

function draw(s: Snapshot): void {
  document.getElementById('cluster')!.textContent = `${s.info.Name} · ${s.info.ServerVersion} · ${s.nodes.length} nodes, ${s.services.length} services`;
  renderRaft(s);
  renderNodes(s, handlers);
  renderServices(s, detail?.id ?? null, handlers);
  renderTasks(s);
  renderNetworks(s);
  renderNamed('secrets', s.secrets);
  renderNamed('configs', s.configs);
  detail?.update(s);
}

/** One refresh at a time; a change noticed during one asks for one more after it. */
async function refresh(): Promise<void> {
  if (running) return void (again = true);
  running = true;
  try {
    do {
      again = false;
      try {
        snapshot = await load();
        draw(snapshot);
      } catch (e) {
        // 503 before a cluster exists, a lost leader: say so, keep the last picture.
        if (e instanceof ApiError && e.status === 503) fill('services-body', h('p', { class: 'bad' }, e.message));
        else showError(e);
      }
    } while (again);
  } finally {
    running = false;
  }
}

const handlers: Handlers = {
  selectService(id) {
    if (!snapshot) return;
    const svc = snapshot.services.find((s) => s.ID === id);
    if (!svc) return;
    detail?.close();
    detail = new ServiceDetail(id, { fail: showError, ok: clearError, refresh: () => void refresh() });
    const section = document.getElementById('detail')!;
    section.replaceChildren(detail.build(svc));
    section.hidden = false;
    draw(snapshot);
  },
  async setAvailability(node, availability) {
    try {
      const cur = await getJson<NodeObj>(`/nodes/${encodeURIComponent(node.ID)}`);
      await post(`/nodes/${encodeURIComponent(node.ID)}/update?version=${cur.Version.Index}`, { ...cur.Spec, Availability: availability });
      clearError();
      void refresh();
    } catch (e) {
      showError(e);
    }
  },
};

function showMode(m: LiveMode, why?: string): void {
  const el = document.getElementById('live')!;
  el.textContent = m === 'events' ? 'live: events stream' : `live: polling every second${why ? ` (${why})` : ''}`;
  el.dataset.mode = m;
}

watchCluster(() => void refresh(), showMode);
