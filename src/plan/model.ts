// Transformer shapes the planner knows by name, and the counts every cost follows from: parameters,
// model FLOPs per token and activation bytes per token. LLaMA-style layers: RMSNorm, GQA attention
// with RoPE, SwiGLU MLP, untied embedding and LM head.

export interface ModelSpec {
  name: string;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ffnHidden: number;
  vocab: number;
}

/** One attention layer of H query heads, Hkv key/value heads and head dim D, as the planner prices a layer alone. */
export function attentionModel(H: number, Hkv: number, D: number, name = `attention H${H}:${Hkv} D${D}`): ModelSpec {
  return { name, layers: 1, hidden: H * D, heads: H, kvHeads: Hkv, headDim: D, ffnHidden: 4 * H * D, vocab: 32000 };
}

/** Shapes from the models' published config.json files. */
export const MODEL_PRESETS: Readonly<Record<string, ModelSpec>> = {
  'llama2-7b': {
    name: 'llama2-7b',
    layers: 32,
    hidden: 4096,
    heads: 32,
    kvHeads: 32,
    headDim: 128,
    ffnHidden: 11008,
    vocab: 32000,
  },
  'llama2-13b': {
    name: 'llama2-13b',
    layers: 40,
    hidden: 5120,
    heads: 40,
    kvHeads: 40,
    headDim: 128,
    ffnHidden: 13824,
    vocab: 32000,
  },
  'llama3-8b': {
    name: 'llama3-8b',
    layers: 32,
    hidden: 4096,
    heads: 32,
    kvHeads: 8,
    headDim: 128,
    ffnHidden: 14336,
    vocab: 128256,
  },
  'llama3-70b': {
    name: 'llama3-70b',
    layers: 80,
    hidden: 8192,
    heads: 64,
    kvHeads: 8,
    headDim: 128,
    ffnHidden: 28672,
    vocab: 128256,
  },
};

/** Weights of one transformer layer (norm weights included). */
export function layerParams(m: ModelSpec): number {
  const q = m.heads * m.headDim,
    kv = m.kvHeads * m.headDim;
  return m.hidden * q + 2 * m.hidden * kv + q * m.hidden + 3 * m.hidden * m.ffnHidden + 2 * m.hidden;
}

/** All weights: layers, input embedding, LM head, final norm. */
export function totalParams(m: ModelSpec): number {
  return m.layers * layerParams(m) + 2 * m.vocab * m.hidden + m.hidden;
}

/**
 * Model FLOPs of one token through one layer's weight products, forward + backward (6 per
 * weight: the PaLM/Megatron convention; backward = 2 × forward).
 */
export function layerLinearFlopsPerToken(m: ModelSpec): number {
  return 6 * (layerParams(m) - 2 * m.hidden);
}

/** LM head FLOPs per token, forward + backward. */
export function headFlopsPerToken(m: ModelSpec): number {
  return 6 * m.vocab * m.hidden;
}

/**
 * Bytes one token leaves in one layer for the backward pass (bf16, FlashAttention — no S² scores —
 * no recomputation): the inputs of both norms (2h each), the QKV input (2h), Q (2h) and K, V after
 * RoPE (2·2·hkv), the attention output (2h), the MLP input (2h), gate and up (2·2F) and the SwiGLU
 * output (2F). The count of Korthikanti et al. (arXiv 2205.05198) adapted to GQA and SwiGLU.
 */
export function activationBytesPerTokenLayer(m: ModelSpec): number {
  const h = m.hidden,
    hq = m.heads * m.headDim,
    hkv = m.kvHeads * m.headDim,
    F = m.ffnHidden;
  return 2 * (4 * h + 2 * hq + 2 * hkv) + 2 * 3 * F;
}

/**
 * Bytes per token that elementwise work (norms, RoPE, SwiGLU, residual adds) reads and writes in
 * one layer, forward + backward (backward ≈ 2 × forward): memory-bound, priced at HBM speed.
 */
export function elementwiseBytesPerTokenLayer(m: ModelSpec): number {
  const h = m.hidden,
    hq = m.heads * m.headDim,
    hkv = m.kvHeads * m.headDim,
    F = m.ffnHidden;
  const fwdElems =
    2 * 3 * h /* two norms: read x, write y, read weight (amortised) */ +
    2 * 3 * h /* two residual adds */ +
    2 * (hq + hkv) /* RoPE on q and k */ +
    3 * F; /* SwiGLU: read gate, up; write out */
  return 3 * 2 * fwdElems;
}
