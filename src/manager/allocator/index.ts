export { Allocator, type AllocatorOptions, canonical } from './allocator.ts';
export * from './ports.ts';
