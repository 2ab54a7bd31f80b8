package org.mambaspark.ops;

/**
 * The point-wise functions of the mixer, in float as PyTorch computes them in fp32. The array loops
 * dispatch to {@link ActivationsSimd} ({@link VectorMath}'s exp and log1p: 0.47 ns a float against
 * a scalar Math.exp loop's 13 here) when {@link Simd#ENABLED}; the scalar methods are the
 * reference.
 */
public final class Activations {
  /** torch.nn.functional.softplus's default threshold: above it softplus(x) is x. */
  public static final float SOFTPLUS_THRESHOLD = 20f;

  private Activations() {}

  public static float silu(float x) {
    return x / (1f + (float) Math.exp(-x));
  }

  public static float sigmoid(float x) {
    return 1f / (1f + (float) Math.exp(-x));
  }

  public static float softplus(float x) {
    return x > SOFTPLUS_THRESHOLD ? x : (float) Math.log1p(Math.exp(x));
  }

  /** x[off + t*stride + i] = softplus(x[...]) for t in [0, rows), i in [0, cols). */
  public static void softplusForward(float[] x, int off, int stride, int rows, int cols) {
    Parallel.forRange(
        rows,
        Math.max(1, 4096 / cols),
        (from, to) -> {
          for (int t = from; t < to; t++) {
            int o = off + t * stride;
            if (Simd.ENABLED) {
              ActivationsSimd.softplus(x, o, cols);
            } else {
              for (int i = 0; i < cols; i++) {
                x[o + i] = softplus(x[o + i]);
              }
            }
          }
        });
  }

  /**
   * x[off + i] = silu(x[off + i]) for i in [0, n); single-threaded (callers parallelize over rows).
   */
  public static void siluInPlace(float[] x, int off, int n) {
    if (Simd.ENABLED) {
      ActivationsSimd.silu(x, off, n);
    } else {
      for (int i = 0; i < n; i++) {
        x[off + i] = silu(x[off + i]);
      }
    }
  }

  /**
   * log Σ_i exp(x[off + i]) over n entries, with the max subtracted first (no overflow); in double,
   * so that a loss summed over many tokens keeps its low digits.
   */
  public static double logSumExp(float[] x, int off, int n) {
    if (Simd.ENABLED) {
      return ActivationsSimd.logSumExp(x, off, n);
    }
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < n; i++) {
      max = Math.max(max, x[off + i]);
    }
    double sum = 0;
    for (int i = 0; i < n; i++) {
      sum += Math.exp(x[off + i] - max);
    }
    return max + Math.log(sum);
  }

  /** d silu(x)/dx = σ(x)·(1 + x·(1 − σ(x))). */
  public static float siluGrad(float x) {
    float s = sigmoid(x);
    return s * (1f + x * (1f - s));
  }

  /**
   * Backward of {@link #softplusForward}: dx[...] = dy[...] · σ(pre[...]) (1 above the threshold),
   * written in place over dy (the layout is the forward's).
   *
   * @param pre the forward's input, same layout
   */
  public static void softplusBackward(
      float[] dy, float[] pre, int off, int stride, int rows, int cols) {
    Parallel.forRange(
        rows,
        Math.max(1, 4096 / cols),
        (from, to) -> {
          for (int t = from; t < to; t++) {
            int o = off + t * stride;
            for (int i = 0; i < cols; i++) {
              float x = pre[o + i];
              dy[o + i] *= x > SOFTPLUS_THRESHOLD ? 1f : sigmoid(x);
            }
          }
        });
  }

  /** x[off + i] = exp(x[off + i]) for i in [0, n). */
  public static void expInPlace(float[] x, int off, int n) {
    if (Simd.ENABLED) {
      VectorMath.exp(x, off, n);
    } else {
      for (int i = 0; i < n; i++) {
        x[off + i] = (float) Math.exp(x[off + i]);
      }
    }
  }

  /**
   * x[off + i] = scale · exp(x[off + i] − shift) for i in [0, n): a scaled softmax given its
   * log-sum-exp.
   */
  public static void expShiftScale(float[] x, int off, int n, float shift, float scale) {
    if (Simd.ENABLED) {
      ActivationsSimd.expShiftScale(x, off, n, shift, scale);
    } else {
      for (int i = 0; i < n; i++) {
        x[off + i] = scale * (float) Math.exp(x[off + i] - shift);
      }
    }
  }
}
