/**
 * Named errors. Each carries the HTTP status the API answers with, so routes never map errors by hand.
 */
export class ShoalError extends Error {
  readonly status: number = 500;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad input from a user: names the field or argument that was wrong. */
export class InvalidArgumentError extends ShoalError {
  override readonly status = 400;
}

export class NotFoundError extends ShoalError {
  override readonly status = 404;
}

/** A stale `Version.Index`, or a name that is already taken. */
export class ConflictError extends ShoalError {
  override readonly status = 409;
}

/** The cluster cannot take this request now (no cluster yet, no leader, no quorum). */
export class UnavailableError extends ShoalError {
  override readonly status = 503;
}

export class NotLeaderError extends UnavailableError {
  constructor(readonly leader: string | null, message = 'this manager is not the leader') {
    super(message);
  }
}

export class AbortedError extends ShoalError {
  constructor(message = 'operation aborted') {
    super(message);
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
