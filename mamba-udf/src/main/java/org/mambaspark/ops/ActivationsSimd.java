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

  static void softplus(float[] x, int off, int n) {
    int i = 0;
    for (; i <= n - VL; i += VL) {
      VectorMath.softplus(FloatVector.fromArray(S, x, off + i)).intoArray(x, off + i);
    }
    for (; i < n; i++) {
      x[off + i] = Activations.softplus(x[off + i]);
    }
  }

  static void silu(float[] x, int off, int n) {
    int i = 0;
    for (; i <= n - VL; i += VL) {
      FloatVector v = FloatVector.fromArray(S, x, off + i);
      v.div(VectorMath.exp(v.neg()).add(1f)).intoArray(x, off + i);
    }
    for (; i < n; i++) {
      x[off + i] = Activations.silu(x[off + i]);
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
    FloatVector vsum = FloatVector.zero(S);
    i = 0;
    for (; i <= n - VL; i += VL) {
      vsum = vsum.add(VectorMath.exp(FloatVector.fromArray(S, x, off + i).sub(max)));
    }
    double sum = vsum.reduceLanes(VectorOperators.ADD);
    for (; i < n; i++) {
      sum += Math.exp(x[off + i] - max);
    }
    return max + Math.log(sum);
  }

  static void exp(float[] x, int off, int n) {
    int i = 0;
    for (; i <= n - VL; i += VL) {
      VectorMath.exp(FloatVector.fromArray(S, x, off + i)).intoArray(x, off + i);
    }
    for (; i < n; i++) {
      x[off + i] = (float) Math.exp(x[off + i]);
    }
  }

  static void expShiftScale(float[] x, int off, int n, float shift, float scale) {
    int i = 0;
    for (; i <= n - VL; i += VL) {
      VectorMath.exp(FloatVector.fromArray(S, x, off + i).sub(shift))
          .mul(scale)
          .intoArray(x, off + i);
    }
    for (; i < n; i++) {
      x[off + i] = scale * (float) Math.exp(x[off + i] - shift);
    }
  }
}
