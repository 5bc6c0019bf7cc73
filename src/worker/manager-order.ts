/**
 * Which managers a worker asks for its dispatcher session, in what order. A follower refuses the
 * session and names the leader it knows. Pure: the daemon's dispatcher link and the scale bench's
 * agents both use it.
 *
 * When a leader dies, every worker's session breaks at once. Trying the managers in turn, a step
 * per attempt, made each worker open a connection to every survivor within a second (a TLS
 * handshake and certificate checks on the survivor's side) while the survivors were electing a
 * leader, and the election's messages waited behind that work (docs/scale.md, stop 35). So:
 * - after a refusal that names a leader, ask that leader first, then the manager that refused
 *   (whose connection is open);
 * - a manager that refuses without naming a leader is asked up to STICK times in a row, then the
 *   list turns (a follower cut off from the leader knows none);
 * - otherwise the list turns a step per attempt, as before, with the manager whose session last
 *   broke at the end.
 * Each attempt still tries every manager in its order until one answers.
 */

/** How the worker's last attempt ended, as the session client saw it. */
export interface SessionHint {
  /** The manager that took the attempt refused the session, naming `leader` (IP:PORT) if it knows one. */
  refused?: { leader?: string };
  /** The attempt had registered a session, which then ended (its manager may be gone). */
  broke?: boolean;
}

/** Attempts in a row one manager is asked while it refuses and names no leader. */
export const STICK = 3;

export class ManagerOrder {
  #turn = 0;
  /** The manager that took the last attempt (a stream opened), IP:PORT. */
  #answered: string | null = null;
  /** The manager whose registered session last broke: last in the turning list. */
  #broken: string | null = null;
  #leaderless = 0;

  /** The order for the next attempt over the `known` managers (IP:PORT, this host left out). */
  next(known: string[], hint: SessionHint = {}): string[] {
    if (hint.broke && this.#answered) this.#broken = this.#answered;
    const answered = this.#answered;
    const refused = hint.refused;
    this.#leaderless = refused && !refused.leader ? this.#leaderless + 1 : 0;
    const rest = known.filter((a) => a !== this.#broken);
    let first: string[];
    if (refused?.leader && answered) {
      first = [refused.leader, answered];
    } else if (refused && answered && this.#leaderless < STICK) {
      first = [answered];
    } else {
      this.#leaderless = 0;
      const step = rest.length ? this.#turn++ % rest.length : 0;
      first = [...rest.slice(step), ...rest.slice(0, step)];
    }
    const order = [...new Set([...first, ...rest])];
    if (this.#broken && known.includes(this.#broken) && !order.includes(this.#broken)) order.push(this.#broken);
    return order;
  }

  /** `addr` took the attempt; null: no manager answered. */
  answered(addr: string | null): void {
    this.#answered = addr;
  }
}
