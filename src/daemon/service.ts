/**
 * The one lifecycle every part of a running daemon has (libp2p's start/stop, fanned out by the
 * composition root in daemon.ts). `stop()` is safe to call once whether or not `start()` finished;
 * what a stop keeps or removes is decided when the part is made, not by arguments to `stop()`.
 */
export interface Service {
  /** For logs: which part failed to stop. */
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}
