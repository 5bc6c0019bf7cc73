/** Output for people (tables, as docker prints them) and for programs (`--format json`). */
import type { Node, Service, Task } from '../types/index.ts';

/** Columns padded to the widest cell, three spaces apart; the last column is not padded. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('   ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export function json(value: unknown): string {
  return JSON.stringify(value, null, 4) + '\n';
}

export function shortId(id: string): string {
  return id.slice(0, 12);
}

export function capitalize(s: string): string {
  return s ? s[0]!.toUpperCase() + s.slice(1) : s;
}

/** Docker's "5 seconds ago", "About a minute ago", "2 hours ago". */
export function ago(iso: string | undefined, now = Date.now()): string {
  const t = iso ? Date.parse(iso) : NaN;
  if (Number.isNaN(t)) return '';
  const s = Math.max(0, Math.floor((now - t) / 1000));
  if (s < 1) return 'Less than a second ago';
  if (s < 60) return `${s} second${s === 1 ? '' : 's'} ago`;
  const m = Math.floor(s / 60);
  if (m === 1) return 'About a minute ago';
  if (m < 60) return `${m} minutes ago`;
  const h = Math.floor(m / 60);
  if (h === 1) return 'About an hour ago';
  if (h < 48) return `${h} hours ago`;
  return `${Math.floor(h / 24)} days ago`;
}

export type ServiceWithStatus = Service & { ServiceStatus?: { RunningTasks: number; DesiredTasks: number; CompletedTasks?: number } };

export function modeOf(s: Service): 'replicated' | 'global' | 'replicated job' | 'global job' {
  const m = s.Spec.Mode;
  return m?.ReplicatedJob ? 'replicated job' : m?.GlobalJob ? 'global job' : m?.Global ? 'global' : 'replicated';
}

/** Docker's REPLICAS column: `2/3`, and for a job `2/2 (3/5 completed)`. */
export function replicasCell(s: ServiceWithStatus): string {
  const st = s.ServiceStatus;
  if (!st) return '';
  const base = `${st.RunningTasks}/${st.DesiredTasks}`;
  const rj = s.Spec.Mode?.ReplicatedJob;
  if (rj) return `${base} (${st.CompletedTasks ?? 0}/${rj.TotalCompletions ?? rj.MaxConcurrent ?? 1} completed)`;
  if (s.Spec.Mode?.GlobalJob) return `${base} (${st.CompletedTasks ?? 0} completed)`;
  return base;
}

export function serviceTable(services: readonly ServiceWithStatus[]): string {
  return table(
    ['ID', 'NAME', 'MODE', 'REPLICAS', 'RUNTIME', 'PORTS'],
    services.map((s) => [
      shortId(s.ID),
      s.Spec.Name,
      modeOf(s),
      replicasCell(s),
      s.Spec.TaskTemplate.Runtime ?? '',
      // The allocated ports (a port left out of the spec has its number there), as docker shows them.
      (s.Endpoint?.Ports ?? s.Spec.EndpointSpec?.Ports ?? []).map((p) => `*:${p.PublishedPort ?? ''}->${p.TargetPort}/${p.Protocol ?? 'tcp'}`).join(', '),
    ]),
  );
}

/** What a task's ERROR column says: the failure, or a pending task's scheduler explanation. */
export function taskError(t: Task): string {
  if (t.Status.Err) return t.Status.Err;
  if (t.Status.State === 'pending' || t.Status.State === 'failed' || t.Status.State === 'rejected') return t.Status.Message ?? '';
  return '';
}

/** Tasks grouped by slot (or node, for global services), newest first; older ones as `\_ web.1`. */
export function taskTable(tasks: readonly Task[], services: ReadonlyMap<string, Service>, nodes: ReadonlyMap<string, Node>, now = Date.now()): string {
  const slotKey = (t: Task) => `${t.ServiceID}/${t.Slot || t.NodeID}`;
  const svcName = (t: Task) => services.get(t.ServiceID)?.Spec.Name ?? shortId(t.ServiceID);
  const sorted = [...tasks].sort(
    (a, b) => svcName(a).localeCompare(svcName(b)) || (a.Slot - b.Slot) || a.NodeID.localeCompare(b.NodeID) || b.CreatedAt.localeCompare(a.CreatedAt),
  );
  const seen = new Set<string>();
  const rows = sorted.map((t) => {
    const key = slotKey(t);
    const first = !seen.has(key);
    seen.add(key);
    const name = `${svcName(t)}.${t.Slot || shortId(t.NodeID)}`;
    const node = t.NodeID ? (nodes.get(t.NodeID)?.Description?.Hostname ?? shortId(t.NodeID)) : '';
    return [
      shortId(t.ID),
      first ? name : ` \\_ ${name}`,
      node,
      capitalize(t.DesiredState),
      `${capitalize(t.Status.State)} ${ago(t.Status.Timestamp, now).toLowerCase()}`.trim(),
      taskError(t),
    ];
  });
  return table(['ID', 'NAME', 'NODE', 'DESIRED STATE', 'CURRENT STATE', 'ERROR'], rows);
}

export function nodeTable(nodes: readonly Node[], selfId: string): string {
  return table(
    ['ID', 'HOSTNAME', 'STATUS', 'AVAILABILITY', 'MANAGER STATUS', 'RUNTIMES', 'ENGINE VERSION'],
    nodes.map((n) => [
      `${n.ID}${n.ID === selfId ? ' *' : ''}`,
      n.Spec.Name || n.Description?.Hostname || '',
      capitalize(n.Status?.State ?? ''),
      capitalize(n.Spec.Availability),
      n.ManagerStatus ? (n.ManagerStatus.Leader ? 'Leader' : capitalize(n.ManagerStatus.Reachability)) : '',
      (n.Description?.Runtimes ?? []).map((r) => (r.Healthy ? r.Name : `${r.Name}(unhealthy)`)).join(','),
      n.Description?.Engine?.EngineVersion ?? '',
    ]),
  );
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i ? 2 : 0)}${units[i]}`;
}

export function infoText(info: any): string {
  const s = info.Swarm ?? {};
  const lines = [
    `Server Version: ${info.ServerVersion ?? ''}`,
    `Swarm: ${s.LocalNodeState ?? 'inactive'}`,
  ];
  if (s.LocalNodeState === 'active') {
    lines.push(
      ` NodeID: ${s.NodeID}`,
      ` Is Manager: ${s.ControlAvailable ? 'true' : 'false'}`,
      ` ClusterID: ${s.Cluster?.ID ?? ''}`,
      ` Managers: ${s.Managers}`,
      ` Nodes: ${s.Nodes}`,
      ` Node Address: ${s.NodeAddr ?? ''}`,
    );
  } else {
    lines.push(' (run "shoal cluster init" to make this host a cluster)');
  }
  const runtimes = Object.entries(info.Runtimes ?? {}) as [string, { Healthy: boolean; Message?: string }][];
  lines.push(`Runtimes: ${runtimes.map(([n, r]) => (r.Healthy ? n : `${n} (unhealthy${r.Message ? `: ${r.Message}` : ''})`)).join(' ') || '(none reported)'}`);
  lines.push(
    `Services: ${info.Services ?? 0}`,
    `Tasks: ${info.Tasks ?? 0} (running: ${info.TasksRunning ?? 0})`,
    `Operating System: ${info.OperatingSystem ?? ''}`,
    `Architecture: ${info.Architecture ?? ''}`,
    `CPUs: ${info.NCPU ?? ''}`,
    `Total Memory: ${typeof info.MemTotal === 'number' ? bytes(info.MemTotal) : ''}`,
    `Name: ${info.Name ?? ''}`,
  );
  return lines.join('\n') + '\n';
}
