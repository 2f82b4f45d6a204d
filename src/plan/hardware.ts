// GPUs and links by name. Rates are datasheet figures; what a kernel or a link achieves of them is
// the calibration's business (calibration/), never baked in here — except the PCIe root complex's
// all-to-all forwarding rate, which no datasheet gives (see L20_BOX).
import type { GpuClass, GpuSpec, PcieTree } from './types.js';

export type { GpuClass, GpuSpec, LinkSpec } from './types.js';
export const GPU_CLASSES: readonly GpuClass[] = ['hopper', 'ampere', 'ada'];

/**
 * The 8 × L20 server of USP (arXiv 2405.07719) Table 3: PCIe Gen4 x16 cards, two behind each PCIe
 * switch, two switches per CPU socket, two sockets (the layout the USP report's L20 topology
 * figure shows, as transcribed in this project's first validation; the figure's text is not in the
 * search index, so this reading is not re-checked here). Uplinks are PCIe Gen4 x16. The root
 * complex's all-to-all forwarding rate is the one figure calibrated on a published run: USP
 * Table 3, 8K, Ulysses 4 × ring 2 (basic ring, 153.134 iterations/s) — an all-to-all inside one
 * socket across its two switches, whose time is almost all communication. Those two 8K rows are
 * excluded from the validation statistics; the Ulysses-8 rows (all-to-alls across sockets) and the
 * longer sequences test the value.
 */
export const L20_BOX_REFERENCE = {
  table: 'USP Table 3',
  gpu: 'l20',
  seqK: 8,
  ulysses: 4,
  shard: 'contiguous',
  itersPerSec: 153.134,
} as const;

export const L20_BOX: PcieTree = {
  gpusPerSwitch: 2,
  switchesPerSocket: 2,
  uplinkGBps: 32,
  rootComplexGBps: 8.11,
  source: 'USP Table 3 L20 server; root complex rate calibrated on its 8K Ulysses 4 × ring 2 row',
};

/**
 * Datasheet figures (NVIDIA product briefs). memGiB is what nvidia-smi reports as total for the
 * part (e.g. 143771 MiB for H200, 81920 MiB for A100/A800 80 GB, 46068 MiB for L20). NVLink is
 * quoted per direction (half the bidirectional figure); L20 has no NVLink: PCIe Gen4 x16.
 * Latencies are typical NCCL small-message figures, an assumption until `weft bench comm` measures them.
 */
export const GPU_PRESETS: Readonly<Record<string, GpuSpec>> = {
  h200: {
    name: 'h200',
    class: 'hopper',
    bf16Tflops: 989.4,
    memGiB: 140.4,
    hbmTBs: 4.8,
    intraNode: { GBps: 450, latencyUs: 5 },
  },
  h100: {
    name: 'h100',
    class: 'hopper',
    bf16Tflops: 989.4,
    memGiB: 79.6,
    hbmTBs: 3.35,
    intraNode: { GBps: 450, latencyUs: 5 },
  },
  h800: {
    name: 'h800',
    class: 'hopper',
    bf16Tflops: 989.4,
    memGiB: 79.6,
    hbmTBs: 3.35,
    intraNode: { GBps: 200, latencyUs: 5 },
  },
  'a100-80g': {
    name: 'a100-80g',
    class: 'ampere',
    bf16Tflops: 312,
    memGiB: 80,
    hbmTBs: 2.039,
    intraNode: { GBps: 300, latencyUs: 6 },
  },
  a800: {
    name: 'a800',
    class: 'ampere',
    bf16Tflops: 312,
    memGiB: 80,
    hbmTBs: 2.039,
    intraNode: { GBps: 200, latencyUs: 6 },
  },
  l20: {
    name: 'l20',
    class: 'ada',
    bf16Tflops: 119.5,
    memGiB: 45,
    hbmTBs: 0.864,
    intraNode: { GBps: 32, latencyUs: 10 },
    pcie: L20_BOX,
  },
};

/** The preset a GPU's marketing name ('NVIDIA H200', 'NVIDIA A100-SXM4-80GB') is, if any. */
export function gpuPresetByName(name: string): GpuSpec | undefined {
  const n = name.toLowerCase();
  // longest preset name first so 'a100-80g' is not mistaken for another part
  for (const key of Object.keys(GPU_PRESETS).sort((a, b) => b.length - a.length)) {
    if (n.includes(key.split('-')[0]!)) return GPU_PRESETS[key];
  }
  return undefined;
}
