// The planner beside a measurement: what it predicts for one row of `weft bench cp` (a weft
// layout, the one-GPU baseline or PyTorch's context parallel) on the GPUs of one node, so that
// every benchmark run is also a check of the model (issue 7) and a change can be predicted
// before it is measured.
import type { MaskSpec } from '../mask/spec.js';
import { maskName } from '../mask/spec.js';
import { parseConfig, type PlanConfig } from './config.js';
import { attentionModel } from './model.js';
import { attentionFootprint, footprintBytes } from './footprint.js';
import { completeLayout, type PlanLayout } from './layout.js';
import { buildContext, evaluate } from './search.js';

/** A weft layout as `weft run` resolves it (src/run/layout.ts), or a peer. */
export type RunLayout =
  | {
      strategy: PlanLayout['strategy'];
      ulysses: number;
      ring: number;
      inner?: number;
      placement?: PlanLayout['placement'];
      shard: PlanLayout['shard'];
    }
  | 'one-gpu'
  | 'pytorch';

export interface RunShape {
  S: number;
  H: number;
  Hkv: number;
  D: number;
  mask: MaskSpec;
  world: number;
}

interface RunPrediction {
  /** forward + backward, ms */
  ms: number;
  /** what a rank's allocator holds at its peak, GiB (weft layouts of the current code only) */
  peakGiB?: number;
}

/** The GPU names the planner has calibrated figures for, by the name CUDA reports. */
function plannerGpu(name: string): string | undefined {
  return /\bH200\b/i.test(name) ? 'h200' : undefined;
}

function config(x: RunShape, gpus: number, gpu: string, implementation: string, kernel?: string): PlanConfig {
  const docs = x.mask.kind === 'document' ? { cuSeqlens: [...x.mask.cuSeqlens] } : {};
  return parseConfig({
    model: attentionModel(x.H, x.Hkv, x.D, `attention H${x.H} D${x.D}`),
    mode: 'attention',
    seqLen: x.S,
    mask: maskName(x.mask),
    ...docs,
    implementation,
    ...(kernel ? { kernel } : {}),
    cluster: { nodes: 1, gpusPerNode: gpus, gpu },
  });
}

/**
 * The planner's prediction for a forward+backward row measured on `gpuName` GPUs, or a reason it
 * has none (a GPU without calibration, a mask the planner does not price).
 */
export async function predictRun(
  x: RunShape,
  layout: RunLayout,
  gpuName: string,
): Promise<RunPrediction | { none: string }> {
  const gpu = plannerGpu(gpuName);
  if (!gpu) return { none: `no calibration for ${gpuName}` };
  if (x.mask.kind === 'slices') return { none: 'explicit slices are not priced' };
  if (layout === 'pytorch') {
    const cfg = config(x, x.world, gpu, 'pytorch', 'cudnn');
    return {
      ms: (await evaluate(buildContext(cfg), completeLayout({ ring: x.world, shard: 'zigzag' }, cfg))).prediction!
        .stepMs,
    };
  }
  if (layout === 'one-gpu') {
    const cfg = config(x, 1, gpu, 'weft');
    return { ms: (await evaluate(buildContext(cfg), completeLayout({}, cfg))).prediction!.stepMs };
  }
  const cfg = config(x, x.world, gpu, 'weft');
  const { strategy, ulysses, ring, shard, placement, inner } = layout;
  const l = completeLayout(
    {
      strategy,
      ulysses,
      ring,
      shard,
      ...(placement ? { placement } : {}),
      ...(strategy === 'double-ring' && inner ? { inner } : {}),
    },
    cfg,
  );
  const ms = (await evaluate(buildContext(cfg), l)).prediction!.stepMs;
  const f = await attentionFootprint({ ...layout, S: x.S, H: x.H, Hkv: x.Hkv, D: x.D, e: 2, backward: true });
  return { ms, peakGiB: footprintBytes(f) / 2 ** 30 };
}
