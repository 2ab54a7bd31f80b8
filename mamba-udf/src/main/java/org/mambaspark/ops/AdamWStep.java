package org.mambaspark.ops;

/**
 * The element-wise AdamW update of one parameter tensor (the optimizer's schedule, bias corrections
 * and decay rules live in {@code train.AdamW}): m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; p ←
 * p·decay − stepSize·m / (√v / bc2Sqrt + ε). Threaded, and vectorized when {@link Simd#ENABLED}.
 */
public final class AdamWStep {
  private AdamWStep() {}

  /**
   * The update of elements [start, end) read from p, m, v and written to pOut, mOut, vOut (the same
   * arrays for an update in place; others when the old state must stay as it was, as a sharded
   * optimizer's cached state must), with the gradient scaled by gScale as it is read (a clipping
   * coefficient; 1 leaves it exact). Element j's gradient is g[j + gShift]: a gradient held in
   * another array's layout is read where it lies.
   */
  public static void adamwStep(
      float[] p,
      float[] m,
      float[] v,
      float[] g,
      int gShift,
      float gScale,
      float[] pOut,
      float[] mOut,
      float[] vOut,
      int start,
      int end,
      float beta1,
      float beta2,
      float eps,
      float decay,
      float stepSize,
      float bc2Sqrt) {
    Parallel.forRange(
        end - start,
        1 << 16,
        (lo, hi) -> {
          int from = start + lo, to = start + hi;
          if (Simd.ENABLED) {
            AdamWStepSimd.step(
                p, m, v, g, gShift, gScale, pOut, mOut, vOut, from, to, beta1, beta2, eps, decay,
                stepSize, bc2Sqrt);
          } else {
            stepRange(
                p, m, v, g, gShift, gScale, pOut, mOut, vOut, from, to, beta1, beta2, eps, decay,
                stepSize, bc2Sqrt);
          }
        });
  }

  static void stepRange(
      float[] p,
      float[] m,
      float[] v,
      float[] g,
      int gShift,
      float gScale,
      float[] pOut,
      float[] mOut,
      float[] vOut,
      int from,
      int to,
      float beta1,
      float beta2,
      float eps,
      float decay,
      float stepSize,
      float bc2Sqrt) {
    for (int j = from; j < to; j++) {
      float gj = g[j + gShift] * gScale;
      float mj = beta1 * m[j] + (1 - beta1) * gj;
      float vj = beta2 * v[j] + (1 - beta2) * gj * gj;
      mOut[j] = mj;
      vOut[j] = vj;
      float denom = (float) Math.sqrt(vj) / bc2Sqrt + eps;
      pOut[j] = p[j] * decay - stepSize * mj / denom;
    }
  }
}
