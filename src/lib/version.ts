// Replaced at build time by build.ts (--define); these fallbacks apply when running from source.
declare const SHOAL_VERSION: string | undefined;
declare const SHOAL_COMMIT: string | undefined;

export const VERSION: string = typeof SHOAL_VERSION === 'string' ? SHOAL_VERSION : '0.1.0-dev';
export const COMMIT: string = typeof SHOAL_COMMIT === 'string' ? SHOAL_COMMIT : 'dev';
/** The Docker Engine API version whose swarm-mode shapes we speak. */
export const API_VERSION = '1.47';
