package org.mambaspark.ops;

import static jdk.incubator.vector.VectorOperators.ADD;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The Vector API dot products of {@link WeightMatrix}'s 16- and 8-bit formats; loaded only when
 * {@link #usable()}. Weights are widened to fp32 in registers (bf16: a short's bits shifted into a
 * float's top half; int8: bytes converted to floats) and multiplied in fp32; the scalar reference
 * is {@link Matmul#matmulForwardReference(float[], int, int, float[], int, int, WeightMatrix,
 * float[], int)}. Vectors stay within each method (see {@link MatmulSimd}).
 */
final class WeightMatrixSimd {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int VL = S.length();
  private static final VectorSpecies<Integer> IS = IntVector.SPECIES_PREFERRED;

  /** Shorts and bytes for VL floats, where the shape exists (a vector is at least 64 bits). */
  private static final VectorSpecies<Short> SS =
      VL >= 4 ? VectorSpecies.of(short.class, VectorShape.forBitSize(16 * VL)) : null;

  private static final VectorSpecies<Byte> BS =
      VL >= 8 ? VectorSpecies.of(byte.class, VectorShape.forBitSize(8 * VL)) : null;

  private WeightMatrixSimd() {}

  /**
   * Whether these kernels run at this vector length: 8 floats or more (shorter vectors take the
   * scalar path), and int8 blocks of whole vectors.
   */
  static boolean usable() {
    return SS != null && BS != null && WeightMatrix.BLOCK % VL == 0;
  }

  /**
   * out[t, o] = Σ_c inp[t, c]·W[o, c] + bias[o] for t < BT, o in [o0, o1): four weight rows at a
   * time against each row t (the four rows stay in L1 while the rows t pass).
   */
  static void dotRows(
      float[] out,
      int outOff,
      int outStride,
      float[] inp,
      int inOff,
      int inStride,
      WeightMatrix w,
      float[] bias,
      int BT,
      int o0,
      int o1) {
    int C = w.cols;
    int o = o0;
    for (; o + 4 <= o1; o += 4) {
      for (int t = 0; t < BT; t++) {
        int oo = outOff + t * outStride + o, xo = inOff + t * inStride;
        if (w.dtype == WeightMatrix.Dtype.BF16) {
          dot1x4Bf16(out, oo, inp, xo, w.bf16, o * C, C);
        } else {
          dot1x4Int8(out, oo, inp, xo, w.q, w.scale, o, C, w.blocksPerRow);
        }
        if (bias != null) {
          for (int r = 0; r < 4; r++) {
            out[oo + r] += bias[o + r];
          }
        }
      }
    }
    for (; o < o1; o++) { // fewer than four rows left: decoded one weight at a time
      for (int t = 0; t < BT; t++) {
        int xo = inOff + t * inStride;
        float s = 0f;
        for (int c = 0; c < C; c++) {
          s += inp[xo + c] * w.get(o, c);
        }
        out[outOff + t * outStride + o] = s + (bias == null ? 0f : bias[o]);
      }
    }
  }

  /** out[oo + r] = Σ_c inp[xo + c]·bf16[wo + r·C + c], r < 4. */
  private static void dot1x4Bf16(
      float[] out, int oo, float[] inp, int xo, short[] w, int wo, int C) {
    int cv = C - C % VL;
    int w1 = wo + C, w2 = w1 + C, w3 = w2 + C;
    FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
    for (int c = 0; c < cv; c += VL) {
      FloatVector x = FloatVector.fromArray(S, inp, xo + c);
      s0 = widen(w, wo + c).fma(x, s0);
      s1 = widen(w, w1 + c).fma(x, s1);
      s2 = widen(w, w2 + c).fma(x, s2);
      s3 = widen(w, w3 + c).fma(x, s3);
    }
    float t0 = 0f, t1 = 0f, t2 = 0f, t3 = 0f;
    for (int c = cv; c < C; c++) {
      float x = inp[xo + c];
      t0 += x * Bf16.widen(w[wo + c]);
      t1 += x * Bf16.widen(w[w1 + c]);
      t2 += x * Bf16.widen(w[w2 + c]);
      t3 += x * Bf16.widen(w[w3 + c]);
    }
    out[oo] = s0.reduceLanes(ADD) + t0;
    out[oo + 1] = s1.reduceLanes(ADD) + t1;
    out[oo + 2] = s2.reduceLanes(ADD) + t2;
    out[oo + 3] = s3.reduceLanes(ADD) + t3;
  }

  /** VL bf16 weights from w[i], as floats (exact). */
  private static FloatVector widen(short[] w, int i) {
    return ((IntVector) ShortVector.fromArray(SS, w, i).convertShape(VectorOperators.S2I, IS, 0))
        .lanewise(VectorOperators.LSHL, 16)
        .reinterpretAsFloats();
  }

  /**
   * out[oo + r] = Σ_blocks scale[o + r, b] · Σ_{c in block b} inp[xo + c]·q[(o + r)·C + c], r < 4:
   * each block's products summed, then scaled once.
   */
  private static void dot1x4Int8(
      float[] out, int oo, float[] inp, int xo, byte[] q, float[] scale, int o, int C, int nb) {
    int full = C / WeightMatrix.BLOCK;
    int w0 = o * C, w1 = w0 + C, w2 = w1 + C, w3 = w2 + C;
    int g0 = o * nb, g1 = g0 + nb, g2 = g1 + nb, g3 = g2 + nb;
    FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
    for (int b = 0; b < full; b++) {
      int c0 = b * WeightMatrix.BLOCK;
      FloatVector zero = FloatVector.zero(S), b0 = zero, b1 = zero, b2 = zero, b3 = zero;
      for (int c = c0; c < c0 + WeightMatrix.BLOCK; c += VL) {
        FloatVector x = FloatVector.fromArray(S, inp, xo + c);
        b0 = bytes(q, w0 + c).fma(x, b0);
        b1 = bytes(q, w1 + c).fma(x, b1);
        b2 = bytes(q, w2 + c).fma(x, b2);
        b3 = bytes(q, w3 + c).fma(x, b3);
      }
      s0 = b0.fma(FloatVector.broadcast(S, scale[g0 + b]), s0);
      s1 = b1.fma(FloatVector.broadcast(S, scale[g1 + b]), s1);
      s2 = b2.fma(FloatVector.broadcast(S, scale[g2 + b]), s2);
      s3 = b3.fma(FloatVector.broadcast(S, scale[g3 + b]), s3);
    }
    float t0 = 0f, t1 = 0f, t2 = 0f, t3 = 0f;
    for (int c = full * WeightMatrix.BLOCK; c < C; c++) { // the last, partial block
      float x = inp[xo + c];
      t0 += x * q[w0 + c];
      t1 += x * q[w1 + c];
      t2 += x * q[w2 + c];
      t3 += x * q[w3 + c];
    }
    if (full < nb) {
      t0 *= scale[g0 + full];
      t1 *= scale[g1 + full];
      t2 *= scale[g2 + full];
      t3 *= scale[g3 + full];
    }
    out[oo] = s0.reduceLanes(ADD) + t0;
    out[oo + 1] = s1.reduceLanes(ADD) + t1;
    out[oo + 2] = s2.reduceLanes(ADD) + t2;
    out[oo + 3] = s3.reduceLanes(ADD) + t3;
  }

  /** VL int8 weights from q[i], as floats (exact). */
  private static FloatVector bytes(byte[] q, int i) {
    return (FloatVector) ByteVector.fromArray(BS, q, i).convertShape(VectorOperators.B2F, S, 0);
  }
}
