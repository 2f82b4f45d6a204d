export * from './shard.js';
export * from './split.js';
