package org.mambaspark.ops;

import java.util.Locale;

/**
 * A weight matrix W (OC, C), row-major as PyTorch's Linear weight, held in one of three number
 * formats for inference. Decoding is memory-bound (every weight is read once per token), so fewer
 * bytes per weight are more tokens per second:
 *
 * <ul>
 *   <li>{@link Dtype#FP32}: the float[] itself, not copied (an optimizer may update it in place);
 *   <li>{@link Dtype#BF16}: 2 bytes a weight, {@link Bf16#round}ed, widened exactly in registers;
 *   <li>{@link Dtype#INT8}: 1 byte a weight plus a float scale per block of {@link #BLOCK} weights
 *       of a row: W[o, c] ≈ scale[o, c / BLOCK] · q[o, c], scale = max |W| of the block / 127, q
 *       rounded to nearest (1.125 bytes a weight).
 * </ul>
 *
 * The arithmetic is fp32 whatever the format: {@link Matmul#matmulForward(float[], int, int,
 * float[], int, int, WeightMatrix, float[], int)} takes dot products for a few rows and the packed
 * GEMM (decoding each panel as it packs it) for many.
 */
public final class WeightMatrix {
  /** The number format of a weight matrix. */
  public enum Dtype {
    FP32(4.0),
    BF16(2.0),
    INT8(1.0 + 4.0 / BLOCK);

    /** Bytes per weight, scales included. */
    public final double bytesPerWeight;

    Dtype(double bytesPerWeight) {
      this.bytesPerWeight = bytesPerWeight;
    }

    /** fp32, bf16 or int8 (any case); anything else is a one-line error naming {@code what}. */
    public static Dtype parse(String s, String what) {
      String v = s == null ? "" : s.trim().toLowerCase(Locale.ROOT);
      switch (v) {
        case "fp32":
        case "float32":
          return FP32;
        case "bf16":
        case "bfloat16":
          return BF16;
        case "int8":
          return INT8;
        default:
          throw new IllegalArgumentException(
              what + " must be fp32, bf16 or int8, got '" + (s == null ? "" : s) + "'");
      }
    }

    /** The lower-case name users type. */
    public String label() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** Weights per int8 scale, along a row. */
  public static final int BLOCK = 32;

  public final Dtype dtype;
  public final int rows; // OC
  public final int cols; // C

  final float[] f32; //   (OC, C)               FP32, else null
  final short[] bf16; //  (OC, C)               BF16, else null
  final byte[] q; //      (OC, C)               INT8, else null
  final float[] scale; // (OC, blocksPerRow)    INT8, else null
  final int blocksPerRow;

  private WeightMatrix(
      Dtype dtype, int rows, int cols, float[] f32, short[] bf16, byte[] q, float[] scale) {
    this.dtype = dtype;
    this.rows = rows;
    this.cols = cols;
    this.f32 = f32;
    this.bf16 = bf16;
    this.q = q;
    this.scale = scale;
    this.blocksPerRow = (cols + BLOCK - 1) / BLOCK;
  }

  /**
   * W (OC, C) from fp32 weights w, in {@code dtype}: FP32 wraps w itself; the others convert it (w
   * may be dropped afterwards).
   */
  public static WeightMatrix of(float[] w, int OC, int C, Dtype dtype) {
    if ((long) OC * C != w.length) {
      throw new IllegalArgumentException(
          "a weight of " + w.length + " floats is not (" + OC + ", " + C + ")");
    }
    switch (dtype) {
      case FP32:
        return new WeightMatrix(dtype, OC, C, w, null, null, null);
      case BF16:
        {
          short[] h = new short[w.length];
          Parallel.forRange(
              w.length,
              1 << 16,
              (i0, i1) -> {
                for (int i = i0; i < i1; i++) {
                  h[i] = Bf16.round(w[i]);
                }
              });
          return new WeightMatrix(dtype, OC, C, null, h, null, null);
        }
      case INT8:
        {
          int nb = (C + BLOCK - 1) / BLOCK;
          byte[] q = new byte[w.length];
          float[] s = new float[OC * nb];
          Parallel.forRange(OC, 64, (o0, o1) -> quantizeRows(q, s, w, C, nb, o0, o1));
          return new WeightMatrix(dtype, OC, C, null, null, q, s);
        }
      default:
        throw new IllegalStateException("unknown dtype " + dtype);
    }
  }

  /** Rows [o0, o1) to int8: per block, scale = max |w| / 127 and q = round(w / scale). */
  private static void quantizeRows(byte[] q, float[] s, float[] w, int C, int nb, int o0, int o1) {
    for (int o = o0; o < o1; o++) {
      for (int b = 0; b < nb; b++) {
        int c0 = o * C + b * BLOCK, c1 = o * C + Math.min(C, (b + 1) * BLOCK);
        float max = 0f;
        for (int i = c0; i < c1; i++) {
          float a = Math.abs(w[i]);
          if (!(a <= Float.MAX_VALUE)) {
            throw new IllegalArgumentException(
                "weight row " + o + " holds " + w[i] + ": int8 needs finite weights");
          }
          max = Math.max(max, a);
        }
        float sc = max / 127f;
        s[o * nb + b] = sc;
        float inv = sc == 0f ? 0f : 1f / sc;
        for (int i = c0; i < c1; i++) {
          q[i] = (byte) Math.max(-127, Math.min(127, Math.round(w[i] * inv)));
        }
      }
    }
  }

  /** W[o, c], decoded: the definition the fast paths are checked against. */
  public float get(int o, int c) {
    int i = o * cols + c;
    switch (dtype) {
      case FP32:
        return f32[i];
      case BF16:
        return Bf16.widen(bf16[i]);
      default:
        return scale[o * blocksPerRow + c / BLOCK] * q[i];
    }
  }

  /** dst[off + i] = W[o, c0 + i] for i < n. */
  public void decode(int o, int c0, int n, float[] dst, int off) {
    int base = o * cols + c0;
    switch (dtype) {
      case FP32:
        System.arraycopy(f32, base, dst, off, n);
        break;
      case BF16:
        for (int i = 0; i < n; i++) {
          dst[off + i] = Bf16.widen(bf16[base + i]);
        }
        break;
      default:
        for (int c = c0; c < c0 + n; ) { // block by block: one scale each
          int end = Math.min(c0 + n, (c / BLOCK + 1) * BLOCK);
          float sc = scale[o * blocksPerRow + c / BLOCK];
          for (; c < end; c++) {
            dst[off + c - c0] = sc * q[base + c - c0];
          }
        }
    }
  }

  /** The fp32 array itself (FP32 only: the GEMM reads it in place). */
  public float[] fp32() {
    if (f32 == null) {
      throw new IllegalStateException("a " + dtype.label() + " weight has no fp32 array");
    }
    return f32;
  }

  /** Bytes held, scales included. */
  public long bytes() {
    switch (dtype) {
      case FP32:
        return 4L * f32.length;
      case BF16:
        return 2L * bf16.length;
      default:
        return q.length + 4L * scale.length;
    }
  }

  @Override
  public String toString() {
    return dtype.label() + " (" + rows + ", " + cols + ")";
  }
}
