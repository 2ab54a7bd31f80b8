package org.mambaspark.ops;

import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * exp and log1p over float lanes, built only from operations IEEE 754 rounds exactly (add, mul,
 * fma, min, max, bit shifts), so a lane's result is the same bits whether the loop is interpreted
 * or compiled. {@code lanewise(EXP)} does not have that property: C2 compiles it to an SVML call
 * while the interpreter and C1 evaluate {@code Math.exp} per lane, and the two differ in the last
 * bit — enough to make a training step's loss depend on when the JIT got to it. Both are Cephes'
 * single-precision polynomials (about 1 ulp) after the usual range reduction.
 *
 * <p>Every method here takes arrays, never vectors. Unlike the JDK's own vector methods ours are
 * not force-inlined, and a large loop body runs C2 past its node budget: a helper that took or
 * returned a {@code FloatVector} would then be called out of line with every vector boxed (ten
 * times slower). A kernel over arrays costs a plain call at worst.
 */
final class VectorMath {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int VL = S.length();
  private static final VectorSpecies<Integer> IS = VectorSpecies.of(int.class, S.vectorShape());
  private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

  private static final float LOG2E = 1.442695f;
  // ln 2 split so that k · LN2_HI is exact for |k| < 2^9
  private static final float LN2_HI = 0.6933594f;
  private static final float LN2_LO = -2.1219444e-4f;
  // 1.5 · 2^23: adding it rounds a float of magnitude < 2^22 to an integer, held in the low bits
  private static final float ROUND = 12582912f;
  private static final int ROUND_BITS = Float.floatToRawIntBits(ROUND);
  // e^x overflows above 88.72 and is below half the smallest subnormal under -103.97; the clamps
  // keep k within what two factors of 2^(k/2) can carry, and let NaN through (min/max keep it)
  private static final float EXP_HI = 89f;
  private static final float EXP_LO = -104f;
  private static final float SQRT2_M1 = 0.41421357f;

  private VectorMath() {}

  /** a[off, off+n) = e^a in place: +∞ above 88.72, 0 or a subnormal below -87.3, NaN for NaN. */
  static void exp(float[] a, int off, int n) {
    inPlace(VectorMath::expWhole, a, off, n);
  }

  /** A kernel over whole vectors: n a multiple of VL. */
  private interface WholeVectors {
    void apply(float[] a, int off, int n);
  }

  /**
   * k over a[off, off+n): the whole vectors in place, the last n mod VL floats in a vector's worth
   * of zeros copied out and back (masked loads and stores cost more than the copy in Java 17, and a
   * kernel keeps one loop body).
   */
  private static void inPlace(WholeVectors k, float[] a, int off, int n) {
    int whole = n - n % VL;
    k.apply(a, off, whole);
    if (whole < n) {
      float[] t = new float[VL];
      System.arraycopy(a, off + whole, t, 0, n - whole);
      k.apply(t, 0, VL);
      System.arraycopy(t, 0, a, off + whole, n - whole);
    }
  }

  /** {@link #exp} for n a multiple of VL. */
  private static void expWhole(float[] a, int off, int n) {
    // the float ↔ int views go through memory: Java 17's reinterpret intrinsic sometimes fails
    // to apply, and its fallback (a byte buffer per call) costs ten times the whole kernel
    byte[] bits = new byte[S.vectorByteSize()];
    for (int i = 0; i < n; i += VL) {
      FloatVector x = FloatVector.fromArray(S, a, off + i).min(EXP_HI).max(EXP_LO);
      FloatVector t = x.fma(LOG2E, ROUND); // ROUND + round(x · log2 e)
      FloatVector k = t.sub(ROUND);
      FloatVector r = k.mul(-LN2_HI).add(x); // k · LN2_HI is exact: k has 8 bits, LN2_HI 9
      r = k.lanewise(VectorOperators.FMA, -LN2_LO, r); // r = x - k ln 2, |r| ≤ ln 2 / 2
      FloatVector p = r.fma(1.9875691e-4f, 0.0013981999f);
      p = p.lanewise(VectorOperators.FMA, r, 0.008333452f);
      p = p.lanewise(VectorOperators.FMA, r, 0.041665796f);
      p = p.lanewise(VectorOperators.FMA, r, 0.16666666f);
      p = p.lanewise(VectorOperators.FMA, r, 0.5f);
      FloatVector y = p.mul(r).fma(r, r).add(1f); // e^r
      // 2^k as 2^(k>>1) · 2^(k - k>>1): each factor a normal float for k in [-150, 129], and the
      // second product rounds once into the subnormal or overflow range
      t.intoByteArray(bits, 0, NATIVE);
      IntVector ki = IntVector.fromByteArray(IS, bits, 0, NATIVE).sub(ROUND_BITS);
      IntVector k1 = ki.lanewise(VectorOperators.ASHR, 1);
      k1.add(127).lanewise(VectorOperators.LSHL, 23).intoByteArray(bits, 0, NATIVE);
      y = y.mul(FloatVector.fromByteArray(S, bits, 0, NATIVE));
      ki.sub(k1).add(127).lanewise(VectorOperators.LSHL, 23).intoByteArray(bits, 0, NATIVE);
      y.mul(FloatVector.fromByteArray(S, bits, 0, NATIVE)).intoArray(a, off + i);
    }
  }

  /**
   * u[off, off+n) = log(1 + u) in place, for u in [0, 1]. Below √2 - 1 the series runs on u itself,
   * so tiny u keeps its precision (1 + u is never formed); above it, on (1 + u)/2 - 1 with one ln 2
   * added.
   */
  static void log1pUnit(float[] a, int off, int n) {
    inPlace(VectorMath::log1pUnitWhole, a, off, n);
  }

  /** {@link #log1pUnit} for n a multiple of VL. */
  private static void log1pUnitWhole(float[] a, int off, int n) {
    FloatVector zero = FloatVector.zero(S);
    for (int i = 0; i < n; i += VL) {
      FloatVector u = FloatVector.fromArray(S, a, off + i);
      VectorMask<Float> big = u.compare(VectorOperators.GT, SQRT2_M1);
      FloatVector f = u.blend(u.add(1f).mul(0.5f).sub(1f), big);
      FloatVector e = zero.blend(1f, big);
      FloatVector z = f.mul(f);
      FloatVector p = f.fma(0.070376836f, -0.1151461f);
      p = p.lanewise(VectorOperators.FMA, f, 0.116769984f);
      p = p.lanewise(VectorOperators.FMA, f, -0.12420141f);
      p = p.lanewise(VectorOperators.FMA, f, 0.14249323f);
      p = p.lanewise(VectorOperators.FMA, f, -0.16668057f);
      p = p.lanewise(VectorOperators.FMA, f, 0.20000714f);
      p = p.lanewise(VectorOperators.FMA, f, -0.24999994f);
      p = p.lanewise(VectorOperators.FMA, f, 0.3333333f);
      FloatVector y = p.mul(f).mul(z); // f³ P(f)
      y = e.lanewise(VectorOperators.FMA, LN2_LO, y);
      y = z.lanewise(VectorOperators.FMA, -0.5f, y);
      f.add(y).add(e.mul(LN2_HI)).intoArray(a, off + i);
    }
  }

  /**
   * out[outOff + (k·rows + n)·VL + i] = exp(dt[dtOff + k·dtStride + i] · A[aOff + n·aStride + i])
   * for k in [0, steps), n in [0, rows), i in [0, lanes): the scan's decay factors exp(Δ_t A) of VL
   * channels over a run of steps, lanes ≥ {@code lanes} left at 1.
   */
  static void expOfProducts(
      float[] out,
      int outOff,
      float[] dt,
      int dtOff,
      int dtStride,
      int steps,
      float[] A,
      int aOff,
      int aStride,
      int rows,
      int lanes) {
    VectorMask<Float> m = S.indexInRange(0, lanes);
    for (int k = 0; k < steps; k++) {
      FloatVector d = FloatVector.fromArray(S, dt, dtOff + k * dtStride, m);
      for (int n = 0; n < rows; n++) {
        d.mul(FloatVector.fromArray(S, A, aOff + n * aStride, m))
            .intoArray(out, outOff + (k * rows + n) * VL);
      }
    }
    expWhole(out, outOff, steps * rows * VL);
  }

  /**
   * out[outOff + k·VL + i] = σ(z[zOff + k·zStride + i]) for k in [0, steps), i in [0, lanes): the
   * gate's sigmoid of VL channels over a run of steps.
   */
  static void sigmoids(
      float[] out, int outOff, float[] z, int zOff, int zStride, int steps, int lanes) {
    VectorMask<Float> m = S.indexInRange(0, lanes);
    for (int k = 0; k < steps; k++) {
      FloatVector.fromArray(S, z, zOff + k * zStride, m).neg().intoArray(out, outOff + k * VL);
    }
    expWhole(out, outOff, steps * VL);
    FloatVector one = FloatVector.broadcast(S, 1f);
    for (int k = 0; k < steps; k++) {
      int o = outOff + k * VL;
      one.div(FloatVector.fromArray(S, out, o).add(1f)).intoArray(out, o);
    }
  }
}
