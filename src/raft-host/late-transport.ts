import type { Message, NodeId } from '../raft/index.ts';
import type { Transport } from './transport.ts';

/**
 * A transport whose network is attached after the raft host started: the daemon opens its log (and
 * serves its API) first and brings libp2p up in the background. Until then, and after detach,
 * messages are dropped, which raft copes with like any loss.
 */
export class LateTransport implements Transport {
  #inner: Transport | null = null;
  #handler: ((m: Message) => void) | null = null;
  #unsubscribe: (() => void) | null = null;

  attach(inner: Transport): void {
    this.detach();
    this.#inner = inner;
    if (this.#handler) this.#unsubscribe = inner.onMessage(this.#handler);
  }

  detach(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    this.#inner = null;
  }

  send(msgs: Message[]): void {
    this.#inner?.send(msgs);
  }

  /** No network yet: nobody is reachable. A network that cannot tell: as if everyone were. */
  reachable(nodeId: NodeId): boolean {
    if (!this.#inner) return false;
    return this.#inner.reachable ? this.#inner.reachable(nodeId) : true;
  }

  onMessage(handler: (m: Message) => void): () => void {
    this.#handler = handler;
    this.#unsubscribe?.();
    this.#unsubscribe = this.#inner?.onMessage(handler) ?? null;
    return () => {
      if (this.#handler !== handler) return;
      this.#handler = null;
      this.#unsubscribe?.();
      this.#unsubscribe = null;
    };
  }
}
