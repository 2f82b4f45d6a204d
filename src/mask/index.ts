export * from './spec.js';
export * from './grid.js';
export * from './view.js';
export * from './area.js';
