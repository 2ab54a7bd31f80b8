package org.mambaspark.ops;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link Ssd#stepHead} vectorized along the state dimension N: per row p of the (P, N) state, the
 * update and the dot product with C_t run VL states a register; and the row operations of the
 * chunked scan. Whole vectors first, the tail through a mask (masked loads are slow in Java 17).
 * Loaded only when {@link Simd#ENABLED}.
 */
final class SsdSimd {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int VL = S.length();

  /** Doubles of half a float vector's width, for sums kept in double. */
  private static final VectorSpecies<Double> SD = VectorSpecies.of(double.class, S.vectorShape());

  private static final int VD = VL / 2;

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
    int nv = N - N % VL; // whole vectors; the tail through a mask (its masked loads are slow)
    var tail = S.indexInRange(nv, N);
    for (int p = 0; p < P; p++) {
      float dxp = d * x[xo + p];
      int o = s + p * N;
      FloatVector acc = FloatVector.zero(S);
      for (int n = 0; n < nv; n += VL) {
        FloatVector v =
            FloatVector.fromArray(S, B, bo + n)
                .mul(dxp)
                .add(FloatVector.fromArray(S, state, o + n).mul(a));
        v.intoArray(state, o + n);
        acc = v.fma(FloatVector.fromArray(S, C, co + n), acc);
      }
      if (nv < N) {
        FloatVector v =
            FloatVector.fromArray(S, B, bo + nv, tail)
                .mul(dxp)
                .add(FloatVector.fromArray(S, state, o + nv, tail).mul(a));
        v.intoArray(state, o + nv, tail);
        acc = v.fma(FloatVector.fromArray(S, C, co + nv, tail), acc);
      }
      y[yo + p] = acc.reduceLanes(VectorOperators.ADD) + dskip * x[xo + p];
    }
  }

  static void scale(float[] dst, int d, float a, float[] src, int s, int n) {
    int nv = n - n % VL;
    for (int i = 0; i < nv; i += VL) {
      FloatVector.fromArray(S, src, s + i).mul(a).intoArray(dst, d + i);
    }
    if (nv < n) {
      var m = S.indexInRange(nv, n);
      FloatVector.fromArray(S, src, s + nv, m).mul(a).intoArray(dst, d + nv, m);
    }
  }

  static void axpy(float[] dst, int d, float alpha, float[] src, int s, int n) {
    int nv = n - n % VL;
    FloatVector a = FloatVector.broadcast(S, alpha);
    for (int i = 0; i < nv; i += VL) {
      FloatVector.fromArray(S, src, s + i)
          .fma(a, FloatVector.fromArray(S, dst, d + i))
          .intoArray(dst, d + i);
    }
    if (nv < n) {
      var m = S.indexInRange(nv, n);
      FloatVector.fromArray(S, src, s + nv, m)
          .fma(a, FloatVector.fromArray(S, dst, d + nv, m))
          .intoArray(dst, d + nv, m);
    }
  }

  static float dot(float[] u, int uo, float[] v, int vo, int n) {
    int nv = n - n % VL;
    FloatVector acc = FloatVector.zero(S);
    for (int i = 0; i < nv; i += VL) {
      acc = FloatVector.fromArray(S, u, uo + i).fma(FloatVector.fromArray(S, v, vo + i), acc);
    }
    if (nv < n) {
      var m = S.indexInRange(nv, n);
      acc =
          FloatVector.fromArray(S, u, uo + nv, m).fma(FloatVector.fromArray(S, v, vo + nv, m), acc);
    }
    return acc.reduceLanes(VectorOperators.ADD);
  }

  /** The largest multiple of the vector length not above n. */
  static int wholeVectors(int n) {
    return n - n % VL;
  }

  /** {@link Ssd#maskedRow} over j < nv, a multiple of the vector length. */
  static void maskedRow(float[] M, float[] CB, int o, float[] lrow, float[] dtv, float e, int nv) {
    for (int j = 0; j < nv; j += VL) {
      FloatVector l = FloatVector.fromArray(S, lrow, j).mul(e);
      l = l.blend(0f, l.compare(VectorOperators.LT, Ssd.TINY));
      l.intoArray(lrow, j);
      l.mul(FloatVector.fromArray(S, CB, o + j))
          .mul(FloatVector.fromArray(S, dtv, j))
          .intoArray(M, o + j);
    }
  }

  /** {@link Ssd#gradientRow} over j < nv, a multiple of the vector length. */
  static double gradientRow(
      float[] M,
      float[] CB,
      float[] YX,
      float[] dCB,
      int o,
      float[] lrow,
      float[] dtv,
      double[] ddtDirect,
      double[] ds,
      float e,
      int nv) {
    DoubleVector acc = DoubleVector.zero(SD);
    for (int j = 0; j < nv; j += VL) {
      FloatVector l = FloatVector.fromArray(S, lrow, j).mul(e);
      l = l.blend(0f, l.compare(VectorOperators.LT, Ssd.TINY));
      l.intoArray(lrow, j);
      FloatVector d = FloatVector.fromArray(S, dtv, j), g = FloatVector.fromArray(S, YX, o + j);
      FloatVector lcb = l.mul(FloatVector.fromArray(S, CB, o + j)), m = lcb.mul(d);
      m.intoArray(M, o + j);
      l.mul(d).fma(g, FloatVector.fromArray(S, dCB, o + j)).intoArray(dCB, o + j);
      for (int part = 0; part < 2; part++) { // the double sums, half a float vector at a time
        int jp = j + part * VD;
        DoubleVector gd = g.convertShape(VectorOperators.F2D, SD, part).reinterpretAsDoubles();
        DoubleVector lcbg =
            lcb.convertShape(VectorOperators.F2D, SD, part).reinterpretAsDoubles().mul(gd);
        DoubleVector.fromArray(SD, ddtDirect, jp).add(lcbg).intoArray(ddtDirect, jp);
        DoubleVector t =
            m.convertShape(VectorOperators.F2D, SD, part).reinterpretAsDoubles().mul(gd);
        acc = acc.add(t);
        DoubleVector.fromArray(SD, ds, jp).sub(t).intoArray(ds, jp);
      }
    }
    return acc.reduceLanes(VectorOperators.ADD);
  }
}
