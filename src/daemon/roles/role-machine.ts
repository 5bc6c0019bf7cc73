/**
 * This host's role in its cluster as one state machine: the states, the moves allowed between
 * them, and what each move starts and stops (roles/changes.ts carries them out). A move that is
 * not in the table is refused, so two changes can never interleave (a demotion while a promotion
 * is under way, an init while a join is). Leadership is not a state here: inside `manager` the
 * leader-only stages follow raft on their own (leadership.ts), started while this node leads.
 */
import { ConflictError } from '../../lib/errors.ts';
import type { NodeRole } from '../../types/index.ts';

export type RoleState =
  /** In no cluster: the API serves, nothing else runs. */
  | 'none'
  /** Being admitted through a manager (POST /swarm/join). */
  | 'joining'
  /** Raft log, CA, manager protocols, leader-only stages while leading; and a worker. */
  | 'manager'
  /** Handing the manager role over (the cluster demoted this node). */
  | 'demoting'
  /** The worker agent, its session over libp2p, this host's networking. */
  | 'worker'
  /** Renewing its certificate as a manager (the cluster promoted this node). */
  | 'promoting'
  /** The daemon starts again on its data dir as the node it became (after a join or a promotion). */
  | 'restarting'
  /** `cluster leave`: the daemon stops and the membership files go. */
  | 'leaving';

/** Every allowed move, and what it does to the running parts. */
export const TRANSITIONS: Readonly<Record<RoleState, Readonly<Partial<Record<RoleState, string>>>>> = {
  none: {
    manager: 'cluster init: start the manager role (raft log already open) and the worker role; the network once a token is asked for',
    joining: 'join: a short-lived listener asks a manager to admit this host',
  },
  joining: {
    none: 'admission failed: back to no cluster',
    restarting: 'admitted: stop; the one-voter log of a host in no cluster is dropped',
  },
  manager: {
    demoting: 'the node object says worker (read linearizably): stop the membership watch, hand leadership over, stop the leader-only stages',
    leaving: 'cluster leave --force: hand leadership over, stop everything, forget the cluster',
  },
  demoting: {
    worker: 'renewed as a worker: stop the manager protocols and the raft log; the worker role goes on, its session over libp2p',
    leaving: 'cluster leave while handing over: stop everything, forget the cluster',
  },
  worker: {
    promoting: 'the heartbeat ack says manager: renew the certificate as a manager',
    leaving: 'cluster leave: stop everything, forget the cluster',
  },
  promoting: {
    worker: 'no manager renewed the certificate as a manager: the next heartbeat ack tries again',
    restarting: 'renewed as a manager: stop keeping the tasks, start again as a manager with an empty raft log',
    leaving: 'cluster leave while promoting: stop everything, forget the cluster',
  },
  restarting: {},
  leaving: {},
};

export class RoleMachine {
  #state: RoleState;

  constructor(initial: RoleState) {
    this.#state = initial;
  }

  /** The state of a daemon starting with this role (from cluster.json, or its own store). */
  static fromRole(role: NodeRole | null): RoleMachine {
    return new RoleMachine(role ?? 'none');
  }

  get state(): RoleState {
    return this.#state;
  }

  is(...states: RoleState[]): boolean {
    return states.includes(this.#state);
  }

  can(to: RoleState): boolean {
    return TRANSITIONS[this.#state][to] !== undefined;
  }

  /** Make the move, or refuse it with a ConflictError that names both states. */
  go(to: RoleState): void {
    if (!this.can(to)) throw new ConflictError(`this node cannot become ${to} while it is ${this.#state}`);
    this.#state = to;
  }
}
