package org.mambaspark.ops;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link Ssd#stepHead} vectorized along the state dimension N: per row p of the (P, N) state, the
 * update and the dot product with C_t run VL states a register, the tail through a mask. Loaded
 * only when {@link Simd#ENABLED}.
 */
final class SsdSimd {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int VL = S.length();

  private SsdSimd() {}

  static void stepHead(
      float[] y,
      int yo,
      float[] state,
      int s,
      float[] x,
      int xo,
      float d,
      float a,
      float[] B,
      int bo,
      float[] C,
      int co,
      float dskip,
      int P,
      int N) {
    for (int p = 0; p < P; p++) {
      float dxp = d * x[xo + p];
      int o = s + p * N;
      FloatVector acc = FloatVector.zero(S);
      for (int n = 0; n < N; n += VL) {
        var m = S.indexInRange(n, N);
        FloatVector v =
            FloatVector.fromArray(S, state, o + n, m)
                .mul(a)
                .add(FloatVector.fromArray(S, B, bo + n, m).mul(dxp));
        v.intoArray(state, o + n, m);
        acc = v.fma(FloatVector.fromArray(S, C, co + n, m), acc);
      }
      y[yo + p] = acc.reduceLanes(VectorOperators.ADD) + dskip * x[xo + p];
    }
  }
}
