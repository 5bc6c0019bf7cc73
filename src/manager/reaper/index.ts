export { TaskReaper, type TaskReaperOptions } from './reaper.ts';
