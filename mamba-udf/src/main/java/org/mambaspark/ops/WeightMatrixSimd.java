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
 * The Vector API dot products of {@link WeightMatrix}'s 16- and 8-bit formats, over its panel
 * layout; loaded only when {@link #usable()}. Weights are widened to fp32 in registers (bf16: a
 * short's bits shifted into a float's top half; int8: bytes converted to floats) and multiplied in
 * fp32; the scalar reference is {@link Matmul#matmulForwardReference(float[], int, int, float[],
 * int, int, WeightMatrix, float[], int)}. Vectors stay within each method (see {@link MatmulSimd}).
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
   * Whether these kernels run at this vector length: 8 or 16 floats (shorter vectors take the
   * scalar path; a panel's interleaved run of 16 columns and an int8 block are whole vectors).
   */
  static boolean usable() {
    return SS != null
        && BS != null
        && WeightMatrix.PANEL_COLS % VL == 0
        && WeightMatrix.BLOCK % WeightMatrix.PANEL_COLS == 0;
  }

  /**
   * out[t, o] = Σ_c inp[t, c]·W[o, c] + bias[o] for t < BT, o in [o0, o1): a panel of four weight
   * rows at a time against each row t, read as one stream (the panel stays in L1 while the rows t
   * pass); rows outside whole panels are decoded one weight at a time.
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
    int P = WeightMatrix.PANEL_ROWS, panelEnd = Math.min(o1, w.panelRows);
    for (int o = o0; o < o1; ) {
      if (o % P == 0 && o + P <= panelEnd) {
        for (int t = 0; t < BT; t++) {
          int oo = outOff + t * outStride + o, xo = inOff + t * inStride;
          if (w.dtype == WeightMatrix.Dtype.BF16) {
            panelBf16(out, oo, inp, xo, w, o);
          } else {
            panelInt8(out, oo, inp, xo, w, o);
          }
          if (bias != null) {
            for (int r = 0; r < P; r++) {
              out[oo + r] += bias[o + r];
            }
          }
        }
        o += P;
      } else { // a row outside the whole panels of [o0, o1): decoded one weight at a time
        for (int t = 0; t < BT; t++) {
          out[outOff + t * outStride + o] =
              tail(inp, inOff + t * inStride, w, o, 0) + (bias == null ? 0f : bias[o]);
        }
        o++;
      }
    }
  }

  /**
   * out[oo + r] = Σ_c inp[xo + c]·W[o + r, c], r < 4, for the panel of rows o..o+3 in bf16: its 16
   * columns of four rows at a time (128 contiguous bytes).
   */
  private static void panelBf16(float[] out, int oo, float[] inp, int xo, WeightMatrix m, int o) {
    short[] w = m.bf16;
    int C = m.cols, cp = m.panelCols, base = o * C;
    FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
    for (int c = 0; c < cp; c += 16) {
      int i = base + 4 * c; // this run of the panel: 16 columns of its four rows
      for (int h = 0; h < 16; h += VL) {
        FloatVector x = FloatVector.fromArray(S, inp, xo + c + h);
        s0 = widen(w, i + h).fma(x, s0);
        s1 = widen(w, i + 16 + h).fma(x, s1);
        s2 = widen(w, i + 32 + h).fma(x, s2);
        s3 = widen(w, i + 48 + h).fma(x, s3);
      }
    }
    out[oo] = s0.reduceLanes(ADD) + tail(inp, xo, m, o, cp);
    out[oo + 1] = s1.reduceLanes(ADD) + tail(inp, xo, m, o + 1, cp);
    out[oo + 2] = s2.reduceLanes(ADD) + tail(inp, xo, m, o + 2, cp);
    out[oo + 3] = s3.reduceLanes(ADD) + tail(inp, xo, m, o + 3, cp);
  }

  /** VL bf16 weights from w[i], as floats (exact). */
  private static FloatVector widen(short[] w, int i) {
    return ((IntVector) ShortVector.fromArray(SS, w, i).convertShape(VectorOperators.S2I, IS, 0))
        .lanewise(VectorOperators.LSHL, 16)
        .reinterpretAsFloats();
  }

  /**
   * out[oo + r] = Σ_blocks scale[o + r, b] · Σ_{c in block b} inp[xo + c]·q[o + r, c], r < 4, for
   * the panel of rows o..o+3 in int8: each block's products summed (128 contiguous bytes), then
   * scaled once by the panel's four scales of the block (side by side).
   */
  private static void panelInt8(float[] out, int oo, float[] inp, int xo, WeightMatrix m, int o) {
    byte[] q = m.q;
    float[] scale = m.scale;
    int C = m.cols, base = o * C, g = o * m.blocksPerRow;
    int full = C / WeightMatrix.BLOCK; // whole blocks lie in the interleaved columns
    FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
    for (int b = 0; b < full; b++) {
      int c0 = b * WeightMatrix.BLOCK;
      FloatVector zero = FloatVector.zero(S), b0 = zero, b1 = zero, b2 = zero, b3 = zero;
      for (int c = c0; c < c0 + WeightMatrix.BLOCK; c += 16) {
        int i = base + 4 * c;
        for (int h = 0; h < 16; h += VL) {
          FloatVector x = FloatVector.fromArray(S, inp, xo + c + h);
          b0 = bytes(q, i + h).fma(x, b0);
          b1 = bytes(q, i + 16 + h).fma(x, b1);
          b2 = bytes(q, i + 32 + h).fma(x, b2);
          b3 = bytes(q, i + 48 + h).fma(x, b3);
        }
      }
      int gb = g + 4 * b;
      s0 = b0.fma(FloatVector.broadcast(S, scale[gb]), s0);
      s1 = b1.fma(FloatVector.broadcast(S, scale[gb + 1]), s1);
      s2 = b2.fma(FloatVector.broadcast(S, scale[gb + 2]), s2);
      s3 = b3.fma(FloatVector.broadcast(S, scale[gb + 3]), s3);
    }
    int k0 = full * WeightMatrix.BLOCK; // the last, partial block (get applies its scale)
    out[oo] = s0.reduceLanes(ADD) + tail(inp, xo, m, o, k0);
    out[oo + 1] = s1.reduceLanes(ADD) + tail(inp, xo, m, o + 1, k0);
    out[oo + 2] = s2.reduceLanes(ADD) + tail(inp, xo, m, o + 2, k0);
    out[oo + 3] = s3.reduceLanes(ADD) + tail(inp, xo, m, o + 3, k0);
  }

  /** Σ_{c0 ≤ c < C} inp[xo + c]·W[o, c], each weight decoded by get: a row's last columns. */
  private static float tail(float[] inp, int xo, WeightMatrix m, int o, int c0) {
    float t = 0f;
    for (int c = c0; c < m.cols; c++) {
      t += inp[xo + c] * m.get(o, c);
    }
    return t;
  }

  /** VL int8 weights from q[i], as floats (exact). */
  private static FloatVector bytes(byte[] q, int i) {
    return (FloatVector) ByteVector.fromArray(BS, q, i).convertShape(VectorOperators.B2F, S, 0);
  }
}
