export { Dispatcher, type DispatcherOptions, type SessionInfo } from './dispatcher.ts';
export { type StatusStats } from './status.ts';
export { type Conn, ConnClosedError, FrameChannel, memoryConnPair, type MemoryConnOptions } from './conn.ts';
export { type Clock, systemClock } from './clock.ts';
export { isAssignedTo } from './assignments.ts';
export { LogStreamError, type RemoteLogOptions } from './logs.ts';
export * from './protocol.ts';
