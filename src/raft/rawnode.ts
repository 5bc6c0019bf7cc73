import type { ConfChange, ConfState, Message, NodeId, RaftConfig, Ready, Status } from './types.ts';

// Placeholder so the API can be built against; replaced by the real implementation.
export class RaftNode {
  constructor(readonly cfg: RaftConfig) {}
  tick(): void { throw new Error('not implemented'); }
  step(_m: Message): void { throw new Error('not implemented'); }
  propose(_data: Uint8Array): void { throw new Error('not implemented'); }
  proposeConfChange(_cc: ConfChange): void { throw new Error('not implemented'); }
  applyConfChange(_cc: ConfChange): ConfState { throw new Error('not implemented'); }
  transferLeader(_to: NodeId): void { throw new Error('not implemented'); }
  readIndex(_ctx: Uint8Array): void { throw new Error('not implemented'); }
  campaign(): void { throw new Error('not implemented'); }
  hasReady(): boolean { throw new Error('not implemented'); }
  ready(): Ready { throw new Error('not implemented'); }
  advance(_rd: Ready): void { throw new Error('not implemented'); }
  status(): Status { throw new Error('not implemented'); }
  reportUnreachable(_id: NodeId): void { throw new Error('not implemented'); }
  reportSnapshot(_id: NodeId, _ok: boolean): void { throw new Error('not implemented'); }
}
