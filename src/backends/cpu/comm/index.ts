export { RankError, runRanks } from './launch.js';
