package org.mambaspark.ops;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API versions of {@link Activations}' array loops; loaded only when {@link Simd#ENABLED}.
 */
final class ActivationsSimd {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int VL = S.length();

  private ActivationsSimd() {}

  /** Floats a pass over scratch covers: a few KB, so the passes stay in L1. */
  private static final int BLOCK = 1024;

  /**
   * softplus(x) = max(x, 0) + log1p(e^-|x|), which is x itself above the threshold as in torch; NaN
   * stays NaN.
   */
  static void softplus(float[] x, int off, int n) {
    float[] t = new float[Math.min(n, BLOCK)];
    for (int b0 = 0; b0 < n; b0 += BLOCK) {
      int len = Math.min(BLOCK, n - b0), o = off + b0, whole = len - len % VL;
      for (int i = 0; i < whole; i += VL) {
        FloatVector.fromArray(S, x, o + i).abs().neg().intoArray(t, i);
      }
      for (int i = whole; i < len; i++) {
        t[i] = -Math.abs(x[o + i]);
      }
      VectorMath.exp(t, 0, len);
      VectorMath.log1pUnit(t, 0, len);
      for (int i = 0; i < whole; i += VL) {
        FloatVector v = FloatVector.fromArray(S, x, o + i);
        v.max(0f)
            .add(FloatVector.fromArray(S, t, i))
            .blend(v, v.compare(VectorOperators.GT, Activations.SOFTPLUS_THRESHOLD))
            .intoArray(x, o + i);
      }
      for (int i = whole; i < len; i++) {
        float v = x[o + i];
        x[o + i] = v > Activations.SOFTPLUS_THRESHOLD ? v : Math.max(v, 0f) + t[i];
      }
    }
  }

  /** silu(x) = x / (1 + e^-x). */
  static void silu(float[] x, int off, int n) {
    float[] t = new float[Math.min(n, BLOCK)];
    for (int b0 = 0; b0 < n; b0 += BLOCK) {
      int len = Math.min(BLOCK, n - b0), o = off + b0, whole = len - len % VL;
      for (int i = 0; i < whole; i += VL) {
        FloatVector.fromArray(S, x, o + i).neg().intoArray(t, i);
      }
      for (int i = whole; i < len; i++) {
        t[i] = -x[o + i];
      }
      VectorMath.exp(t, 0, len);
      for (int i = 0; i < whole; i += VL) {
        FloatVector.fromArray(S, x, o + i)
            .div(FloatVector.fromArray(S, t, i).add(1f))
            .intoArray(x, o + i);
      }
      for (int i = whole; i < len; i++) {
        x[o + i] /= 1f + t[i];
      }
    }
  }

  static double logSumExp(float[] x, int off, int n) {
    int i = 0;
    FloatVector vmax = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
    for (; i <= n - VL; i += VL) {
      vmax = vmax.max(FloatVector.fromArray(S, x, off + i));
    }
    float max = vmax.reduceLanes(VectorOperators.MAX);
    for (; i < n; i++) {
      max = Math.max(max, x[off + i]);
    }
    if (max == Float.NEGATIVE_INFINITY || Float.isNaN(max)) {
      return max;
    }
    float[] t = new float[Math.min(n, BLOCK)];
    FloatVector vsum = FloatVector.zero(S);
    double tailSum = 0;
    for (int b0 = 0; b0 < n; b0 += BLOCK) {
      int len = Math.min(BLOCK, n - b0), o = off + b0, whole = len - len % VL;
      for (int j = 0; j < whole; j += VL) {
        FloatVector.fromArray(S, x, o + j).sub(max).intoArray(t, j);
      }
      for (int j = whole; j < len; j++) {
        t[j] = x[o + j] - max;
      }
      VectorMath.exp(t, 0, len);
      for (int j = 0; j < whole; j += VL) {
        vsum = vsum.add(FloatVector.fromArray(S, t, j));
      }
      for (int j = whole; j < len; j++) {
        tailSum += t[j];
      }
    }
    return max + Math.log(vsum.reduceLanes(VectorOperators.ADD) + tailSum);
  }

  /** x = scale · e^(x - shift). */
  static void expShiftScale(float[] x, int off, int n, float shift, float scale) {
    int whole = n - n % VL;
    for (int i = 0; i < whole; i += VL) {
      FloatVector.fromArray(S, x, off + i).sub(shift).intoArray(x, off + i);
    }
    for (int i = whole; i < n; i++) {
      x[off + i] -= shift;
    }
    VectorMath.exp(x, off, n);
    for (int i = 0; i < whole; i += VL) {
      FloatVector.fromArray(S, x, off + i).mul(scale).intoArray(x, off + i);
    }
    for (int i = whole; i < n; i++) {
      x[off + i] *= scale;
    }
  }
}
