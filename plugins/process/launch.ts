/**
 * How a task's program is started: the argv the shim spawns. Bun cannot `exec` in place, so the
 * steps that must happen between fork and the program's exec are a chain of small programs that
 * each exec the next:
 *
 *   sh -c WRAPPER shoal-launch --cgroup <dir>/cgroup.procs… --      join the task's cgroups (as root)
 *   nsenter --net=/run/netns/NAME --                                 the worker's network namespace
 *   unshare --pid --fork --mount-proc --kill-child --net --mount --  optional namespaces
 *   sh -c WRAPPER shoal-launch --resolv F --files … --loopback ip --mark M --
 *                                              resolv.conf, secrets/configs, lo up, "entered"
 *   setpriv --reuid U --regid G --groups A,B --                      the task's user and groups
 *   <ProcessSpec.Command…>
 *
 * Joining the cgroup first means everything the program ever forks is in it, whatever session or
 * process group it moves to. Each step is only there when needed; with none, the program is
 * spawned directly.
 *
 * A task on overlay networks (`TaskContext.network.netns`) enters the namespace the worker made
 * with nsenter (setns needs CAP_SYS_ADMIN: before setpriv drops it), then gets a mount namespace of
 * its own (`--propagation slave`, as `ip netns exec`: host mounts still reach it, its own do not
 * leave it) in which its resolv.conf, written into the task directory, is bind-mounted over
 * /etc/resolv.conf. The last root step touches a marker file, so the shim can tell "could not
 * enter the namespace" from "the program exited". Every step execs the next: the pid the shim
 * watches is the program's.
 *
 * With Isolation.Mount, a task's secrets and configs (its tmpfs's `secrets/` and `configs/`) are
 * bind-mounted read-only at /run/secrets and /run/configs inside its private mount namespace, as a
 * container sees its secrets at /run/secrets; the host's directories there (mount points only) are
 * not touched, and nothing of it leaves the namespace.
 */
import type { ProcessIsolation } from '../../src/types/index.ts';

/** Exit code of a failed launch step (as Docker's "container command could not be invoked"). */
export const LAUNCH_FAILED_EXIT = 125;

const WRAPPER = `while [ $# -gt 0 ]; do
  case "$1" in
    --cgroup) echo 0 > "$2" || { echo "shoal: cannot join cgroup $2" >&2; exit ${LAUNCH_FAILED_EXIT}; }; shift 2 ;;
    --loopback) "$2" link set lo up || { echo "shoal: cannot bring up loopback" >&2; exit ${LAUNCH_FAILED_EXIT}; }; shift 2 ;;
    --resolv) "$2" --bind "$3" /etc/resolv.conf || { echo "shoal: cannot bind $3 over /etc/resolv.conf" >&2; exit ${LAUNCH_FAILED_EXIT}; }; shift 3 ;;
    --files) "$2" --bind -o ro "$3" "$4" || { echo "shoal: cannot bind $3 at $4" >&2; exit ${LAUNCH_FAILED_EXIT}; }; shift 4 ;;
    --mark) : > "$2" || { echo "shoal: cannot write $2" >&2; exit ${LAUNCH_FAILED_EXIT}; }; shift 2 ;;
    --) shift; exec "$@" ;;
    *) echo "shoal: bad launch step $1" >&2; exit ${LAUNCH_FAILED_EXIT} ;;
  esac
done
exit ${LAUNCH_FAILED_EXIT}`;

const SEARCH_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The host programs the launch chain may use; absent ones are undefined. */
export interface HostTools { sh?: string; unshare?: string; setpriv?: string; ip?: string; nsenter?: string; mount?: string }

export function findTools(): HostTools {
  const which = (p: string) => Bun.which(p, { PATH: SEARCH_PATH }) ?? undefined;
  const t: HostTools = {};
  for (const name of ['sh', 'unshare', 'setpriv', 'ip', 'nsenter', 'mount'] as const) {
    const found = which(name);
    if (found) t[name] = found;
  }
  return t;
}

export interface LaunchPlan {
  /** cgroup.procs files the program joins before anything else. */
  cgroupProcs: string[];
  isolation?: ProcessIsolation;
  /** Switch identity with setpriv (supplementary groups included). */
  user?: { uid: number; gid: number; groups: number[] };
  /** Run inside a network namespace made by the worker (`TaskNetwork.netns`). */
  netns?: {
    path: string;
    /** A resolv.conf to bind-mount over /etc/resolv.conf in a mount namespace of the task's own. */
    resolvConf?: string;
    /** A file the launch creates once inside the namespace, as root, just before the user switch. */
    mark: string;
  };
  /**
   * With Isolation.Mount: host directories to bind read-only inside the task's mount namespace,
   * `[from, to]` (its secrets at /run/secrets, its configs at /run/configs). `to` must exist.
   */
  files?: [from: string, to: string][];
}

/**
 * What a plan needs from the host that it lacks: a message naming the spec field, or null.
 * `tools` comes from `findTools()`.
 */
export function missingTools(plan: LaunchPlan, tools: HostTools): string | null {
  const iso = plan.isolation;
  const wantsNs = !!(iso?.Pid || iso?.Mount || iso?.Network);
  if ((plan.cgroupProcs.length || iso?.Network) && !tools.sh) return 'the process runtime needs /bin/sh on this node to join cgroups';
  if (wantsNs && !tools.unshare) return 'ProcessSpec.Isolation: needs unshare (util-linux) on this node';
  if (iso?.Network && !tools.ip) return 'ProcessSpec.Isolation.Network: needs ip (iproute2) on this node to bring up loopback';
  if (plan.user && !tools.setpriv) return 'ProcessSpec.User: needs setpriv (util-linux) on this node';
  if (plan.files?.length && (!tools.sh || !tools.mount)) return 'ProcessSpec.Isolation.Mount: showing the task its secrets and configs at /run/secrets and /run/configs needs sh and mount (util-linux) on this node';
  const ns = plan.netns;
  if (ns) {
    const lack = [!tools.sh && 'sh', !tools.nsenter && 'nsenter (util-linux)',
      ns.resolvConf && !tools.unshare && 'unshare (util-linux)', ns.resolvConf && !tools.mount && 'mount (util-linux)']
      .filter(Boolean);
    if (lack.length) return `network namespace ${ns.path}: joining it needs ${lack.join(', ')} on this node`;
  }
  return null;
}

/** `argv` behind the step that joins the cgroups of `cgroupProcs` first (nothing when there are none). */
export function joinCgroupsFirst(argv: string[], cgroupProcs: string[], sh: string): string[] {
  if (!cgroupProcs.length) return argv;
  return [sh, '-c', WRAPPER, 'shoal-launch', ...cgroupProcs.flatMap((f) => ['--cgroup', f]), '--', ...argv];
}

/** The argv that starts `command` under `plan`; `command` itself when no step is needed. */
export function launchArgv(command: string[], plan: LaunchPlan, tools: HostTools): string[] {
  const iso = plan.isolation ?? {};
  const steps: string[] = [];
  if (plan.cgroupProcs.length) steps.push(...joinCgroupsFirst([], plan.cgroupProcs, tools.sh!));
  const ns = plan.netns;
  // The worker's namespace stands in for Isolation.Network's empty one: the task has a network
  // namespace of its own either way.
  const newNet = !!iso.Network && !ns;
  const newMount = !!iso.Mount || !!ns?.resolvConf;
  const binds = iso.Mount ? plan.files ?? [] : [];
  if (ns) steps.push(tools.nsenter!, `--net=${ns.path}`, '--');
  if (iso.Pid || newMount || newNet) {
    steps.push(tools.unshare!);
    // The program is PID 1 of the new namespace; --kill-child takes it down with unshare.
    if (iso.Pid) steps.push('--pid', '--fork', '--mount-proc', '--kill-child');
    if (newMount && !iso.Pid) steps.push('--mount');
    // Only for resolv.conf's sake: host mounts keep reaching the task (Isolation.Mount: private).
    if (newMount && !iso.Mount) steps.push('--propagation', 'slave');
    if (newNet) steps.push('--net');
    steps.push('--');
  }
  if (newNet || ns || binds.length) {
    steps.push(tools.sh!, '-c', WRAPPER, 'shoal-launch');
    if (ns?.resolvConf) steps.push('--resolv', tools.mount!, ns.resolvConf);
    for (const [from, to] of binds) steps.push('--files', tools.mount!, from, to);
    if ((newNet || ns) && (newNet || tools.ip)) steps.push('--loopback', tools.ip!);
    if (ns) steps.push('--mark', ns.mark);
    steps.push('--');
  }
  if (plan.user) {
    const { uid, gid, groups } = plan.user;
    steps.push(tools.setpriv!, `--reuid=${uid}`, `--regid=${gid}`, groups.length ? `--groups=${groups.join(',')}` : '--clear-groups', '--');
  }
  return [...steps, ...command];
}
