export { Allocator, type AllocatorOptions } from './allocator.ts';
export * from './ports.ts';
export * from './networks.ts';
