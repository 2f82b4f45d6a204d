// Splitting a range into near-equal parts: the first `n % parts` parts get one element more.
// Contiguous and zigzag sharding use it, and so do the chunked collectives of the local Comm.

/** Bounds b[0..parts] with b[0] = 0, b[parts] = n and part i = [b[i], b[i+1]). */
export function evenSplit(n: number, parts: number): Int32Array {
  const b = new Int32Array(parts + 1);
  const q = Math.floor(n / parts),
    r = n % parts;
  for (let i = 0; i < parts; i++) b[i + 1] = b[i]! + q + (i < r ? 1 : 0);
  return b;
}
