/** What one look at a service's tasks says about its progress (progress.ts, job-progress.ts). */
export interface Progress {
  done: boolean;
  line: string;
  /** Set when waiting longer is pointless. */
  failure?: string;
}
