export { createApp } from './app.ts';
export type { ApiDeps, InitRequest, LogLine, LogRequest } from './deps.ts';
export { MAX_BODY_BYTES, NOT_A_MANAGER } from './middleware.ts';
