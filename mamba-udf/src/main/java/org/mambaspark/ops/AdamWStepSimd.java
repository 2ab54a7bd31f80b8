package org.mambaspark.ops;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link AdamWStep} with the Vector API; loaded only when {@link Simd#ENABLED}. Same arithmetic
 * order.
 */
final class AdamWStepSimd {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int VL = S.length();

  private AdamWStepSimd() {}

  static void step(
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
    int j = from;
    for (; j <= to - VL; j += VL) {
      FloatVector gj = FloatVector.fromArray(S, g, j + gShift).mul(gScale);
      FloatVector mj = FloatVector.fromArray(S, m, j).mul(beta1).add(gj.mul(1 - beta1));
      FloatVector vj = FloatVector.fromArray(S, v, j).mul(beta2).add(gj.mul(1 - beta2).mul(gj));
      mj.intoArray(mOut, j);
      vj.intoArray(vOut, j);
      FloatVector denom = vj.lanewise(VectorOperators.SQRT).div(bc2Sqrt).add(eps);
      FloatVector.fromArray(S, p, j).mul(decay).sub(mj.mul(stepSize).div(denom)).intoArray(pOut, j);
    }
    AdamWStep.stepRange(
        p, m, v, g, gShift, gScale, pOut, mOut, vOut, j, to, beta1, beta2, eps, decay, stepSize,
        bc2Sqrt);
  }
}
