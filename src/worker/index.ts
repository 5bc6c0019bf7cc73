export { Agent, type AgentCatalog, type AgentOptions, type AgentTaskView } from './agent.ts';
export { LOST_WHILE_DOWN, type RunnerDeps, TaskRunner } from './runner.ts';
export { type BackoffOptions, SessionClient, type SessionClientOptions, type SessionHandlers } from './session.ts';
