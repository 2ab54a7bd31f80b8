package org.mambaspark.ops;

/**
 * The element-wise AdamW update of one parameter tensor (the optimizer's schedule, bias corrections
 * and decay rules live in {@code train.AdamW}): m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; p ←
 * p·decay − stepSize·m / (√v / bc2Sqrt + ε). Threaded, and vectorized when {@link Simd#ENABLED}.
 */
public final class AdamWStep {
  private AdamWStep() {}

  public static void adamwStep(
      float[] p,
      float[] m,
      float[] v,
      float[] g,
      float beta1,
      float beta2,
      float eps,
      float decay,
      float stepSize,
      float bc2Sqrt) {
    adamwStep(p, m, v, g, 0, p.length, beta1, beta2, eps, decay, stepSize, bc2Sqrt);
  }

  /** The update of elements [start, end) only (a slice of a flat parameter vector). */
  public static void adamwStep(
      float[] p,
      float[] m,
      float[] v,
      float[] g,
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
            AdamWStepSimd.step(p, m, v, g, from, to, beta1, beta2, eps, decay, stepSize, bc2Sqrt);
          } else {
            stepRange(p, m, v, g, from, to, beta1, beta2, eps, decay, stepSize, bc2Sqrt);
          }
        });
  }

  static void stepRange(
      float[] p,
      float[] m,
      float[] v,
      float[] g,
      int from,
      int to,
      float beta1,
      float beta2,
      float eps,
      float decay,
      float stepSize,
      float bc2Sqrt) {
    for (int j = from; j < to; j++) {
      float gj = g[j];
      m[j] = beta1 * m[j] + (1 - beta1) * gj;
      v[j] = beta2 * v[j] + (1 - beta2) * gj * gj;
      float denom = (float) Math.sqrt(v[j]) / bc2Sqrt + eps;
      p[j] = p[j] * decay - stepSize * m[j] / denom;
    }
  }
}
