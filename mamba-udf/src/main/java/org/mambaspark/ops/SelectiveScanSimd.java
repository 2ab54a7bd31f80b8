package org.mambaspark.ops;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link SelectiveScan#scanForward} vectorized across channels: one register holds VL consecutive
 * channels e of one batch row, the recurrence runs over t, and the loop over the N states is
 * inside. Loaded only when {@link Simd#ENABLED}. The channel tail (ED not a multiple of VL) runs
 * the same arithmetic through a masked vector.
 */
final class SelectiveScanSimd {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int VL = S.length();

  private SelectiveScanSimd() {}

  static void scanForward(
      float[] y,
      float[] h,
      float[] u,
      float[] delta,
      float[] A,
      float[] dbc,
      int R,
      float[] D,
      float[] z,
      int zOff,
      int zStride,
      int B,
      int L,
      int ED,
      int N) {
    int blocks = (ED + VL - 1) / VL;
    Parallel.forRange(
        B * blocks,
        1,
        (from, to) -> {
          for (int job = from; job < to; job++) {
            int b = job / blocks;
            int e0 = (job - b * blocks) * VL;
            scanBlock(y, h, u, delta, A, dbc, R, D, z, zOff, zStride, b, e0, L, ED, N);
          }
        });
  }

  private static void scanBlock(
      float[] y,
      float[] h,
      float[] u,
      float[] delta,
      float[] A,
      float[] dbc,
      int R,
      float[] D,
      float[] z,
      int zOff,
      int zStride,
      int b,
      int e0,
      int L,
      int ED,
      int N) {
    var m = S.indexInRange(e0, ED);
    int P = R + 2 * N;
    int hb = b * N * ED + e0;
    FloatVector dSkip = FloatVector.fromArray(S, D, e0, m);
    for (int t = 0; t < L; t++) {
      int row = b * L + t;
      int ro = row * ED + e0;
      FloatVector dt = FloatVector.fromArray(S, delta, ro, m);
      FloatVector x = FloatVector.fromArray(S, u, ro, m);
      FloatVector dtx = dt.mul(x);
      int bOff = row * P + R, cOff = bOff + N;
      FloatVector acc = dSkip.mul(x);
      for (int n = 0; n < N; n++) {
        int ho = hb + n * ED;
        FloatVector a =
            dt.mul(FloatVector.fromArray(S, A, n * ED + e0, m)).lanewise(VectorOperators.EXP);
        FloatVector hn = FloatVector.fromArray(S, h, ho, m).fma(a, dtx.mul(dbc[bOff + n]));
        hn.intoArray(h, ho, m);
        acc = hn.mul(dbc[cOff + n]).add(acc);
      }
      FloatVector zz = FloatVector.fromArray(S, z, row * zStride + zOff + e0, m);
      FloatVector gate = zz.div(zz.neg().lanewise(VectorOperators.EXP).add(1f));
      acc.mul(gate).intoArray(y, ro, m);
    }
  }
}
