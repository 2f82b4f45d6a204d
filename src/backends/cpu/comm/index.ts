export { DEFAULT_TIMEOUT_MS, type LaunchOptions, RankError, type RankProgram, runRanks } from './launch.js';
export { LocalComm } from './group.js';
export { CommTimeout } from './transport.js';
