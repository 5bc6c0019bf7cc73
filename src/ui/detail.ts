/**
 * The panel of one service: its rolling-update progress, the actions (scale, new image, rollback)
 * and its logs. Built once per selection, so what the user is typing survives the page's refreshes;
 * only the status line is updated from each snapshot.
 */
import { getJson, post, readLines } from './api.ts';
import { h } from './dom.ts';
import { modeOf, type ServiceObj, type Snapshot } from './types.ts';

export interface DetailDeps {
  fail(e: unknown): void;
  ok(): void;
  refresh(): void;
}

/** Lines the log view keeps: a chatty service must not grow the page without bound. */
const MAX_LOG_LINES = 2000;

export class ServiceDetail {
  #logAbort: AbortController | null = null;
  #status = h('p', { id: 'update-status' });

  constructor(readonly id: string, private readonly deps: DetailDeps) {}

  close(): void {
    this.#logAbort?.abort();
  }

  /** A fresh copy (the version an update must name) with `change` applied to its spec, sent as an update. */
  async #update(change: (spec: ServiceObj['Spec']) => void): Promise<void> {
    try {
      const cur = await getJson<ServiceObj>(`/services/${encodeURIComponent(this.id)}`);
      const spec = structuredClone(cur.Spec);
      change(spec);
      await post(`/services/${encodeURIComponent(this.id)}/update?version=${cur.Version.Index}`, spec);
      this.deps.ok();
      this.deps.refresh();
    } catch (e) {
      this.deps.fail(e);
    }
  }

  async #rollback(): Promise<void> {
    try {
      const cur = await getJson<ServiceObj>(`/services/${encodeURIComponent(this.id)}`);
      await post(`/services/${encodeURIComponent(this.id)}/update?version=${cur.Version.Index}&rollback=previous`);
      this.deps.ok();
      this.deps.refresh();
    } catch (e) {
      this.deps.fail(e);
    }
  }

  async #logs(pre: HTMLElement, follow: boolean): Promise<void> {
    this.#logAbort?.abort();
    const abort = (this.#logAbort = new AbortController());
    pre.textContent = '';
    const append = (line: string) => {
      pre.append(`${line}\n`);
      while (pre.childNodes.length > MAX_LOG_LINES) pre.firstChild!.remove();
      pre.scrollTop = pre.scrollHeight;
    };
    try {
      const q = follow ? 'follow=1&tail=100' : 'tail=500';
      const res = await fetch(`/services/${encodeURIComponent(this.id)}/logs?stdout=1&stderr=1&timestamps=1&${q}`, { signal: abort.signal });
      if (!res.ok) {
        const body = (await res.json().catch(() => ({}))) as { message?: string };
        throw new Error(`logs: ${body.message ?? res.status}`);
      }
      await readLines(res, append);
      if (!pre.textContent) pre.textContent = '(no log lines)';
    } catch (e) {
      if (!abort.signal.aborted) this.deps.fail(e);
    }
  }

  /** The panel's elements, made once for this service. */
  build(svc: ServiceObj): HTMLElement {
    const replicated = modeOf(svc.Spec) === 'replicated';
    const replicas = h('input', { type: 'number', id: 'scale-replicas', min: 0, value: svc.Spec.Mode?.Replicated?.Replicas ?? 1, disabled: !replicated }) as HTMLInputElement;
    const hasImage = !!svc.Spec.TaskTemplate.ContainerSpec;
    const image = h('input', { type: 'text', id: 'image', value: svc.Spec.TaskTemplate.ContainerSpec?.Image ?? '', disabled: !hasImage, placeholder: hasImage ? '' : 'not a container service' }) as HTMLInputElement;
    const pre = h('pre', { id: 'logs' });
    const follow = h('input', { type: 'checkbox', id: 'logs-follow' }) as HTMLInputElement;
    return h('div', {},
      h('h2', {}, `Service ${svc.Spec.Name}`),
      this.#status,
      h('div', { class: 'actions' },
        h('label', {}, 'replicas', replicas, h('button', { id: 'scale', disabled: !replicated, onclick: () => {
          const n = Number(replicas.value);
          if (!Number.isInteger(n) || n < 0) return this.deps.fail(new Error(`replicas: expected a whole number ≥ 0, got "${replicas.value}"`));
          void this.#update((s) => { s.Mode = { Replicated: { Replicas: n } }; });
        } }, 'scale')),
        h('label', {}, 'image', image, h('button', { id: 'update-image', disabled: !hasImage, onclick: () => {
          const ref = image.value.trim();
          if (!ref) return this.deps.fail(new Error('image: enter an image reference'));
          void this.#update((s) => { s.TaskTemplate.ContainerSpec = { ...s.TaskTemplate.ContainerSpec, Image: ref }; });
        } }, 'update image')),
        h('button', { id: 'rollback', onclick: () => void this.#rollback() }, 'rollback'),
        h('label', {}, follow, 'follow'),
        h('button', { id: 'show-logs', onclick: () => void this.#logs(pre, follow.checked) }, 'logs'),
      ),
      pre,
    );
  }

  /** The rolling update's progress as the latest snapshot tells it. */
  update(s: Snapshot): void {
    const svc = s.services.find((x) => x.ID === this.id);
    if (!svc) return void (this.#status.textContent = 'this service was removed');
    const u = svc.UpdateStatus;
    const st = svc.ServiceStatus;
    const running = st ? `${st.RunningTasks} of ${st.DesiredTasks} tasks running` : '';
    const upd = u?.State ? `update: ${u.State}${u.Message ? ` (${u.Message})` : ''}${u.StartedAt ? `, started ${new Date(u.StartedAt).toLocaleTimeString()}` : ''}${u.CompletedAt ? `, done ${new Date(u.CompletedAt).toLocaleTimeString()}` : ''}` : 'no update in progress';
    this.#status.textContent = [`version ${svc.Version.Index}`, running, upd].filter(Boolean).join(' · ');
  }
}
