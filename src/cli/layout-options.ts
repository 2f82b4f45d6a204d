// The options that choose a context-parallel layout, shared by `weft run` and `weft attn`.
import type { Command } from 'commander';
import type { Placement } from '../mesh/mesh.js';
import type { Layout } from '../run/index.js';
import { SHARD_KINDS, type ShardKind } from '../shard/shard.js';
import { STRATEGY_NAMES, type StrategyName } from '../strategy/names.js';
import { UserError } from '../errors.js';
import { parseInt } from './options.js';

export interface LayoutOpts {
  strategy?: string;
  world?: string;
  shard?: string;
  ulysses?: string;
  ring?: string;
  inner?: string;
  placement?: string;
  timeout: string;
}

/** `whenOptional`: what it means to leave --strategy out, where it may be left out. */
export function addLayoutOptions(
  cmd: Command,
  strategyRequired: boolean,
  whenOptional = 'default: one rank, no strategy',
): Command {
  const strategyHelp = `${STRATEGY_NAMES.join(' | ')} (weft run: also varlen, docs/varlen.md)`;
  if (strategyRequired)
    cmd.requiredOption('--strategy <name>', strategyHelp).requiredOption('--world <n>', 'number of ranks');
  else
    cmd
      .option('--strategy <name>', `${strategyHelp} (${whenOptional})`)
      .option('--world <n>', 'number of ranks (with --strategy)');
  return cmd
    .option('--shard <kind>', `${SHARD_KINDS.join(' | ')} (default: doc-zigzag for document masks, else zigzag)`)
    .option('--ulysses <U>', 'Ulysses degree (ulysses, usp)')
    .option('--ring <R>', 'ring degree (usp)')
    .option('--inner <I>', 'inner ring size (double-ring)')
    .option('--placement <p>', 'usp: head-first (Ulysses groups on consecutive ranks) | context-first')
    .option('--timeout <s>', 'seconds any single communication wait may take', '300');
}

/** An optional whole-number option (`flag` without its dashes). */
export function optInt(text: string | undefined, flag: string, min = 1): number | undefined {
  return text === undefined ? undefined : parseInt(text, `--${flag}`, min);
}

/** The layout the options describe, or undefined when no strategy was asked for. */
export function layoutFrom(o: LayoutOpts): Layout | undefined {
  if (o.strategy === undefined) {
    for (const f of ['world', 'shard', 'ulysses', 'ring', 'inner', 'placement'] as const)
      if (o[f] !== undefined) throw new UserError(`--${f} needs --strategy`);
    return undefined;
  }
  const world = optInt(o.world, 'world');
  if (world === undefined) throw new UserError('--strategy needs --world');
  return {
    strategy: o.strategy as StrategyName,
    world,
    shard: o.shard as ShardKind | undefined,
    ulysses: optInt(o.ulysses, 'ulysses'),
    ring: optInt(o.ring, 'ring'),
    inner: optInt(o.inner, 'inner'),
    placement: o.placement as Placement | undefined,
  };
}

export function timeoutMs(o: LayoutOpts): number {
  const s = Number(o.timeout);
  if (!(s > 0) || !Number.isFinite(s))
    throw new UserError(`--timeout must be a positive number of seconds, not '${o.timeout}'`);
  return s * 1000;
}
