/**
 * Named executor errors. The driver maps them to task states: a `PrepareError` or `StartError`
 * becomes `rejected` with the error's message; any other error thrown by a controller becomes
 * `failed`.
 */
export class ExecutorError extends Error {
  override name = 'ExecutorError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The task could not be prepared (bad user, missing directory, image not found…). */
export class PrepareError extends ExecutorError {
  override name = 'PrepareError';
}

/** The work could not be started (program not found, permission denied…). */
export class StartError extends ExecutorError {
  override name = 'StartError';
}

/** No executor is registered for the runtime a task asks for. */
export class UnknownRuntimeError extends ExecutorError {
  override name = 'UnknownRuntimeError';
  constructor(readonly runtime: string, known: string[]) {
    super(`TaskTemplate.Runtime: unknown runtime "${runtime}" (this node has: ${known.join(', ') || 'none'})`);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
