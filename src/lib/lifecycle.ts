/**
 * The one lifecycle every part of a running daemon has (libp2p's start/stop, fanned out by the
 * composition root in daemon.ts). `stop()` is safe to call once whether or not `start()` finished;
 * what a stop keeps or removes comes from what the part was given when made, not from arguments
 * to `stop()`.
 */
export interface Service {
  /** Names the part in what it logs ("worker stop: …"). */
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}
