package org.mambaspark.ops;

import static jdk.incubator.vector.VectorOperators.ADD;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The Vector API micro-kernels of {@link MatmulGemm}; loaded only when {@link Simd#ENABLED}.
 *
 * <p>Vectors never cross a method boundary here (a callee C2 does not inline would box them): each
 * kernel loads, computes and stores within itself, and its callers pass arrays and offsets only.
 * Any species length works: the packed panels are exactly four vectors wide, and the dot-product
 * kernel finishes each row with a scalar tail.
 */
final class MatmulSimd {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int VL = S.length();

  /** The register tile's width: four vectors. */
  static final int NR = 4 * VL;

  private MatmulSimd() {}

  /**
   * c[r, :NR] = init[r, :NR] + Σ_k ap[ao + r·aRs + k·aKs]·bp[bo + k·NR + :NR] for r < 4, k < kc:
   * row r of c at co + r·cRs, of init at io + r·iRs (iRs = 0: the bias row). A is a packed
   * micro-panel (aRs = 1, aKs = 4), doutᵀ read in place (aRs = 1, aKs = dout's row stride) or rows
   * read in place (aRs = the row stride, aKs = 1). 16 accumulators; per k, 4 loads of B and 4
   * broadcasts of A feed 16 FMAs.
   */
  static void kernel(
      int kc,
      float[] ap,
      int ao,
      int aRs,
      int aKs,
      float[] bp,
      int bo,
      float[] init,
      int io,
      int iRs,
      float[] c,
      int co,
      int cRs) {
    int i1 = io + iRs, i2 = i1 + iRs, i3 = i2 + iRs;
    FloatVector c00 = FloatVector.fromArray(S, init, io);
    FloatVector c01 = FloatVector.fromArray(S, init, io + VL);
    FloatVector c02 = FloatVector.fromArray(S, init, io + 2 * VL);
    FloatVector c03 = FloatVector.fromArray(S, init, io + 3 * VL);
    FloatVector c10 = FloatVector.fromArray(S, init, i1);
    FloatVector c11 = FloatVector.fromArray(S, init, i1 + VL);
    FloatVector c12 = FloatVector.fromArray(S, init, i1 + 2 * VL);
    FloatVector c13 = FloatVector.fromArray(S, init, i1 + 3 * VL);
    FloatVector c20 = FloatVector.fromArray(S, init, i2);
    FloatVector c21 = FloatVector.fromArray(S, init, i2 + VL);
    FloatVector c22 = FloatVector.fromArray(S, init, i2 + 2 * VL);
    FloatVector c23 = FloatVector.fromArray(S, init, i2 + 3 * VL);
    FloatVector c30 = FloatVector.fromArray(S, init, i3);
    FloatVector c31 = FloatVector.fromArray(S, init, i3 + VL);
    FloatVector c32 = FloatVector.fromArray(S, init, i3 + 2 * VL);
    FloatVector c33 = FloatVector.fromArray(S, init, i3 + 3 * VL);
    int a1 = ao + aRs, a2 = a1 + aRs, a3 = a2 + aRs;
    for (int k = 0; k < kc; k++) {
      int b = bo + k * NR, ak = aKs * k;
      FloatVector b0 = FloatVector.fromArray(S, bp, b);
      FloatVector b1 = FloatVector.fromArray(S, bp, b + VL);
      FloatVector b2 = FloatVector.fromArray(S, bp, b + 2 * VL);
      FloatVector b3 = FloatVector.fromArray(S, bp, b + 3 * VL);
      FloatVector x = FloatVector.broadcast(S, ap[ao + ak]);
      c00 = b0.fma(x, c00);
      c01 = b1.fma(x, c01);
      c02 = b2.fma(x, c02);
      c03 = b3.fma(x, c03);
      x = FloatVector.broadcast(S, ap[a1 + ak]);
      c10 = b0.fma(x, c10);
      c11 = b1.fma(x, c11);
      c12 = b2.fma(x, c12);
      c13 = b3.fma(x, c13);
      x = FloatVector.broadcast(S, ap[a2 + ak]);
      c20 = b0.fma(x, c20);
      c21 = b1.fma(x, c21);
      c22 = b2.fma(x, c22);
      c23 = b3.fma(x, c23);
      x = FloatVector.broadcast(S, ap[a3 + ak]);
      c30 = b0.fma(x, c30);
      c31 = b1.fma(x, c31);
      c32 = b2.fma(x, c32);
      c33 = b3.fma(x, c33);
    }
    int r1 = co + cRs, r2 = r1 + cRs, r3 = r2 + cRs;
    c00.intoArray(c, co);
    c01.intoArray(c, co + VL);
    c02.intoArray(c, co + 2 * VL);
    c03.intoArray(c, co + 3 * VL);
    c10.intoArray(c, r1);
    c11.intoArray(c, r1 + VL);
    c12.intoArray(c, r1 + 2 * VL);
    c13.intoArray(c, r1 + 3 * VL);
    c20.intoArray(c, r2);
    c21.intoArray(c, r2 + VL);
    c22.intoArray(c, r2 + 2 * VL);
    c23.intoArray(c, r2 + 3 * VL);
    c30.intoArray(c, r3);
    c31.intoArray(c, r3 + VL);
    c32.intoArray(c, r3 + 2 * VL);
    c33.intoArray(c, r3 + 3 * VL);
  }

  /**
   * {@link #kernel} for one vector column of the tile: c[r, :VL] = init[r, :VL] + Σ_k ap[ao + r·aRs
   * + k·aKs]·bp[bo + k·NR + :VL]. The same FMA chain per element as {@link #kernel}, for the right
   * edge of a panel where fewer than four vectors hold columns of out (x_proj's 80 = 64 + 16).
   */
  static void kernel1(
      int kc,
      float[] ap,
      int ao,
      int aRs,
      int aKs,
      float[] bp,
      int bo,
      float[] init,
      int io,
      int iRs,
      float[] c,
      int co,
      int cRs) {
    FloatVector c0 = FloatVector.fromArray(S, init, io);
    FloatVector c1 = FloatVector.fromArray(S, init, io + iRs);
    FloatVector c2 = FloatVector.fromArray(S, init, io + 2 * iRs);
    FloatVector c3 = FloatVector.fromArray(S, init, io + 3 * iRs);
    int a1 = ao + aRs, a2 = a1 + aRs, a3 = a2 + aRs;
    for (int k = 0; k < kc; k++) {
      int ak = aKs * k;
      FloatVector b0 = FloatVector.fromArray(S, bp, bo + k * NR);
      c0 = b0.fma(FloatVector.broadcast(S, ap[ao + ak]), c0);
      c1 = b0.fma(FloatVector.broadcast(S, ap[a1 + ak]), c1);
      c2 = b0.fma(FloatVector.broadcast(S, ap[a2 + ak]), c2);
      c3 = b0.fma(FloatVector.broadcast(S, ap[a3 + ak]), c3);
    }
    c0.intoArray(c, co);
    c1.intoArray(c, co + cRs);
    c2.intoArray(c, co + 2 * cRs);
    c3.intoArray(c, co + 3 * cRs);
  }

  /**
   * out[t, o] = Σ_c inp[t, c]·weight[o, c] + bias[o] for t < BT, o in [o0, o1): dot products along
   * c. Tiles of 4 rows t × 4 weight rows o keep 16 accumulators (8 loads per 16 FMAs), each
   * finished by a lane reduction and a scalar tail; the 4 weight rows stay in L1 while the rows t
   * pass, so the weight is read from memory once.
   */
  static void dotRows(
      float[] out,
      int outOff,
      int outStride,
      float[] inp,
      int inOff,
      int inStride,
      float[] weight,
      float[] bias,
      int BT,
      int C,
      int o0,
      int o1) {
    int o = o0;
    for (; o + 4 <= o1; o += 4) {
      int t = 0;
      for (; t + 4 <= BT; t += 4) {
        dot4x4(
            out,
            outOff + t * outStride + o,
            outStride,
            inp,
            inOff + t * inStride,
            inStride,
            weight,
            o * C,
            bias,
            o,
            C);
      }
      for (; t < BT; t++) {
        dot1x4(
            out, outOff + t * outStride + o, inp, inOff + t * inStride, weight, o * C, bias, o, C);
      }
    }
    for (; o < o1; o++) {
      int wo = o * C;
      for (int t = 0; t < BT; t++) {
        out[outOff + t * outStride + o] =
            dot(inp, inOff + t * inStride, weight, wo, C) + (bias == null ? 0f : bias[o]);
      }
    }
  }

  /**
   * out[oo + r·outRs + q] = Σ_c inp[xo + r·xRs + c]·weight[wo + q·C + c] + bias[o + q], r, q < 4.
   */
  private static void dot4x4(
      float[] out,
      int oo,
      int outRs,
      float[] inp,
      int xo,
      int xRs,
      float[] weight,
      int wo,
      float[] bias,
      int o,
      int C) {
    int cv = C - C % VL;
    int x1 = xo + xRs, x2 = x1 + xRs, x3 = x2 + xRs;
    int w1 = wo + C, w2 = w1 + C, w3 = w2 + C;
    FloatVector s00 = FloatVector.zero(S), s01 = s00, s02 = s00, s03 = s00;
    FloatVector s10 = s00, s11 = s00, s12 = s00, s13 = s00;
    FloatVector s20 = s00, s21 = s00, s22 = s00, s23 = s00;
    FloatVector s30 = s00, s31 = s00, s32 = s00, s33 = s00;
    for (int c = 0; c < cv; c += VL) {
      FloatVector v0 = FloatVector.fromArray(S, weight, wo + c);
      FloatVector v1 = FloatVector.fromArray(S, weight, w1 + c);
      FloatVector v2 = FloatVector.fromArray(S, weight, w2 + c);
      FloatVector v3 = FloatVector.fromArray(S, weight, w3 + c);
      FloatVector x = FloatVector.fromArray(S, inp, xo + c);
      s00 = v0.fma(x, s00);
      s01 = v1.fma(x, s01);
      s02 = v2.fma(x, s02);
      s03 = v3.fma(x, s03);
      x = FloatVector.fromArray(S, inp, x1 + c);
      s10 = v0.fma(x, s10);
      s11 = v1.fma(x, s11);
      s12 = v2.fma(x, s12);
      s13 = v3.fma(x, s13);
      x = FloatVector.fromArray(S, inp, x2 + c);
      s20 = v0.fma(x, s20);
      s21 = v1.fma(x, s21);
      s22 = v2.fma(x, s22);
      s23 = v3.fma(x, s23);
      x = FloatVector.fromArray(S, inp, x3 + c);
      s30 = v0.fma(x, s30);
      s31 = v1.fma(x, s31);
      s32 = v2.fma(x, s32);
      s33 = v3.fma(x, s33);
    }
    float b0 = 0f, b1 = 0f, b2 = 0f, b3 = 0f;
    if (bias != null) {
      b0 = bias[o];
      b1 = bias[o + 1];
      b2 = bias[o + 2];
      b3 = bias[o + 3];
    }
    int r1 = oo + outRs, r2 = r1 + outRs, r3 = r2 + outRs;
    out[oo] = s00.reduceLanes(ADD) + tail(inp, xo, weight, wo, cv, C) + b0;
    out[oo + 1] = s01.reduceLanes(ADD) + tail(inp, xo, weight, w1, cv, C) + b1;
    out[oo + 2] = s02.reduceLanes(ADD) + tail(inp, xo, weight, w2, cv, C) + b2;
    out[oo + 3] = s03.reduceLanes(ADD) + tail(inp, xo, weight, w3, cv, C) + b3;
    out[r1] = s10.reduceLanes(ADD) + tail(inp, x1, weight, wo, cv, C) + b0;
    out[r1 + 1] = s11.reduceLanes(ADD) + tail(inp, x1, weight, w1, cv, C) + b1;
    out[r1 + 2] = s12.reduceLanes(ADD) + tail(inp, x1, weight, w2, cv, C) + b2;
    out[r1 + 3] = s13.reduceLanes(ADD) + tail(inp, x1, weight, w3, cv, C) + b3;
    out[r2] = s20.reduceLanes(ADD) + tail(inp, x2, weight, wo, cv, C) + b0;
    out[r2 + 1] = s21.reduceLanes(ADD) + tail(inp, x2, weight, w1, cv, C) + b1;
    out[r2 + 2] = s22.reduceLanes(ADD) + tail(inp, x2, weight, w2, cv, C) + b2;
    out[r2 + 3] = s23.reduceLanes(ADD) + tail(inp, x2, weight, w3, cv, C) + b3;
    out[r3] = s30.reduceLanes(ADD) + tail(inp, x3, weight, wo, cv, C) + b0;
    out[r3 + 1] = s31.reduceLanes(ADD) + tail(inp, x3, weight, w1, cv, C) + b1;
    out[r3 + 2] = s32.reduceLanes(ADD) + tail(inp, x3, weight, w2, cv, C) + b2;
    out[r3 + 3] = s33.reduceLanes(ADD) + tail(inp, x3, weight, w3, cv, C) + b3;
  }

  /** out[oo + q] = Σ_c inp[xo + c]·weight[wo + q·C + c] + bias[o + q], q < 4. */
  private static void dot1x4(
      float[] out,
      int oo,
      float[] inp,
      int xo,
      float[] weight,
      int wo,
      float[] bias,
      int o,
      int C) {
    int cv = C - C % VL;
    int w1 = wo + C, w2 = w1 + C, w3 = w2 + C;
    FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
    for (int c = 0; c < cv; c += VL) {
      FloatVector x = FloatVector.fromArray(S, inp, xo + c);
      s0 = FloatVector.fromArray(S, weight, wo + c).fma(x, s0);
      s1 = FloatVector.fromArray(S, weight, w1 + c).fma(x, s1);
      s2 = FloatVector.fromArray(S, weight, w2 + c).fma(x, s2);
      s3 = FloatVector.fromArray(S, weight, w3 + c).fma(x, s3);
    }
    float b0 = 0f, b1 = 0f, b2 = 0f, b3 = 0f;
    if (bias != null) {
      b0 = bias[o];
      b1 = bias[o + 1];
      b2 = bias[o + 2];
      b3 = bias[o + 3];
    }
    out[oo] = s0.reduceLanes(ADD) + tail(inp, xo, weight, wo, cv, C) + b0;
    out[oo + 1] = s1.reduceLanes(ADD) + tail(inp, xo, weight, w1, cv, C) + b1;
    out[oo + 2] = s2.reduceLanes(ADD) + tail(inp, xo, weight, w2, cv, C) + b2;
    out[oo + 3] = s3.reduceLanes(ADD) + tail(inp, xo, weight, w3, cv, C) + b3;
  }

  /** Σ_c inp[xo + c]·weight[wo + c], c < C. */
  private static float dot(float[] inp, int xo, float[] weight, int wo, int C) {
    int cv = C - C % VL;
    FloatVector s = FloatVector.zero(S);
    for (int c = 0; c < cv; c += VL) {
      s = FloatVector.fromArray(S, weight, wo + c).fma(FloatVector.fromArray(S, inp, xo + c), s);
    }
    return s.reduceLanes(ADD) + tail(inp, xo, weight, wo, cv, C);
  }

  /** The scalar tail of a dot product: Σ inp[xo + c]·weight[wo + c] for c in [cv, C). */
  private static float tail(float[] inp, int xo, float[] weight, int wo, int cv, int C) {
    float r = 0f;
    for (int c = cv; c < C; c++) {
      r += inp[xo + c] * weight[wo + c];
    }
    return r;
  }
}
