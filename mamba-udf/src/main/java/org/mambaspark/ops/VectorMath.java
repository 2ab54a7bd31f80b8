package org.mambaspark.ops;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;

/**
 * exp and log1p over float lanes, built only from operations IEEE 754 rounds exactly (add, mul,
 * fma, min, max, bit shifts), so a lane's result is the same bits whether the loop is interpreted
 * or compiled. {@code lanewise(EXP)} does not have that property: C2 compiles it to an SVML call
 * while the interpreter and C1 evaluate {@code Math.exp} per lane, and the two differ in the last
 * bit — enough to make a training step's loss depend on when the JIT got to it. Both are Cephes'
 * single-precision polynomials (about 1 ulp) after the usual range reduction.
 */
final class VectorMath {
  private VectorMath() {}

  private static final float LOG2E = 1.442695f;
  // ln 2 split so that n · LN2_HI is exact for |n| < 2^9
  private static final float LN2_HI = 0.6933594f;
  private static final float LN2_LO = -2.1219444e-4f;
  // 1.5 · 2^23: adding it rounds a float of magnitude < 2^22 to an integer, held in the low bits
  private static final float ROUND = 12582912f;
  private static final int ROUND_BITS = Float.floatToRawIntBits(ROUND);
  // e^x overflows above 88.72 and is below half the smallest subnormal under -103.97; the clamps
  // keep n within what two factors of 2^(n/2) can carry, and let NaN through (min/max keep it)
  private static final float EXP_HI = 89f;
  private static final float EXP_LO = -104f;
  private static final float SQRT2_M1 = 0.41421357f;

  /** e^x per lane; +∞ above 88.72, 0 (or a subnormal) below -87.3, NaN for NaN. */
  static FloatVector exp(FloatVector x) {
    x = x.min(EXP_HI).max(EXP_LO);
    FloatVector t = x.fma(LOG2E, ROUND); // ROUND + round(x · log2 e)
    FloatVector n = t.sub(ROUND);
    FloatVector r = n.fma(c(x, -LN2_HI), x);
    r = n.fma(c(x, -LN2_LO), r); // r = x - n ln 2, |r| ≤ ln 2 / 2
    FloatVector p = r.fma(1.9875691e-4f, 0.0013981999f);
    p = p.fma(r, c(r, 0.008333452f));
    p = p.fma(r, c(r, 0.041665796f));
    p = p.fma(r, c(r, 0.16666666f));
    p = p.fma(r, c(r, 0.5f));
    FloatVector y = p.mul(r).fma(r, r).add(1f); // e^r
    // 2^n as 2^(n>>1) · 2^(n - n>>1): each factor a normal float for n in [-150, 129], and the
    // second product rounds once into the subnormal or overflow range
    IntVector ni = t.reinterpretAsInts().sub(ROUND_BITS);
    IntVector n1 = ni.lanewise(VectorOperators.ASHR, 1);
    IntVector n2 = ni.sub(n1);
    FloatVector s1 = n1.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
    FloatVector s2 = n2.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
    return y.mul(s1).mul(s2);
  }

  /**
   * log(1 + u) per lane for u in [0, 1]. Below √2 - 1 the series runs on u itself, so tiny u keeps
   * its precision (1 + u is never formed); above it, on (1 + u)/2 - 1 with one ln 2 added.
   */
  static FloatVector log1pUnit(FloatVector u) {
    VectorMask<Float> big = u.compare(VectorOperators.GT, SQRT2_M1);
    FloatVector f = u.blend(u.add(1f).mul(0.5f).sub(1f), big);
    FloatVector e = FloatVector.zero(u.species()).blend(1f, big);
    FloatVector z = f.mul(f);
    FloatVector p = f.fma(0.070376836f, -0.1151461f);
    p = p.fma(f, c(f, 0.116769984f));
    p = p.fma(f, c(f, -0.12420141f));
    p = p.fma(f, c(f, 0.14249323f));
    p = p.fma(f, c(f, -0.16668057f));
    p = p.fma(f, c(f, 0.20000714f));
    p = p.fma(f, c(f, -0.24999994f));
    p = p.fma(f, c(f, 0.3333333f));
    FloatVector y = p.mul(f).mul(z); // f³ P(f)
    y = e.fma(c(e, LN2_LO), y);
    y = z.fma(c(z, -0.5f), y);
    return f.add(y).add(e.mul(LN2_HI));
  }

  private static FloatVector c(FloatVector like, float v) {
    return FloatVector.broadcast(like.species(), v);
  }

  /** softplus(x) = max(x, 0) + log1p(e^-|x|), which is x itself above 20 as in torch. */
  static FloatVector softplus(FloatVector x) {
    FloatVector sp = x.max(0f).add(log1pUnit(exp(x.abs().neg())));
    // NaN stays NaN through max, abs and exp
    return sp.blend(x, x.compare(VectorOperators.GT, Activations.SOFTPLUS_THRESHOLD));
  }

  /** σ(x) = 1 / (1 + e^-x). */
  static FloatVector sigmoid(FloatVector x) {
    return FloatVector.broadcast(x.species(), 1f).div(exp(x.neg()).add(1f));
  }
}
