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
 * The 16- and 8-bit copies are laid out for the decode step's matrix-vector product, which reads
 * each weight once and is bound by how fast memory streams: rows in panels of {@link #PANEL_ROWS},
 * each panel's rows interleaved by {@link #PANEL_COLS} columns (W[4p + r, 16j + i] at (4p)·C + 64j
 * + 16r + i), so that the product of four rows walks one contiguous stream, which the hardware
 * prefetcher follows, instead of four short ones. Columns past the last multiple of 16 follow the
 * panel's interleaved part row by row; rows past the last multiple of 4 stay row-major. The int8
 * scales are interleaved the same way (a panel's four scales of block b side by side). {@link #get}
 * is the definition of the layout.
 *
 * <p>The arithmetic is fp32 whatever the format: {@link Matmul#matmulForward(float[], int, int,
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

  /** Rows per panel of the 16- and 8-bit layouts. */
  static final int PANEL_ROWS = 4;

  /** Columns per interleaved run of a panel's row (a divisor of {@link #BLOCK}). */
  static final int PANEL_COLS = 16;

  public final Dtype dtype;
  public final int rows; // OC
  public final int cols; // C

  final float[] f32; //   (OC, C)               FP32, else null
  final short[] bf16; //  (OC, C)               BF16 in the panel layout, else null
  final byte[] q; //      (OC, C)               INT8 in the panel layout, else null
  final float[] scale; // (OC, blocksPerRow)    INT8 in the panel layout, else null
  final int blocksPerRow;
  final int panelRows; // rows in whole panels: rows - rows % PANEL_ROWS
  final int panelCols; // columns interleaved: cols - cols % PANEL_COLS

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
    this.panelRows = rows - rows % PANEL_ROWS;
    this.panelCols = cols - cols % PANEL_COLS;
  }

  /** Where W[o, c] is in the bf16 or int8 array (the panel layout above). */
  int index(int o, int c) {
    if (o >= panelRows) {
      return o * cols + c;
    }
    int base = (o - o % PANEL_ROWS) * cols, r = o % PANEL_ROWS;
    if (c < panelCols) {
      return base + (c / PANEL_COLS) * PANEL_ROWS * PANEL_COLS + r * PANEL_COLS + c % PANEL_COLS;
    }
    return base + PANEL_ROWS * panelCols + r * (cols - panelCols) + c - panelCols;
  }

  /** Where row o's scale of block b is in the int8 scales. */
  int scaleIndex(int o, int b) {
    if (o >= panelRows) {
      return o * blocksPerRow + b;
    }
    return (o - o % PANEL_ROWS) * blocksPerRow + b * PANEL_ROWS + o % PANEL_ROWS;
  }

  /** Columns from c on that lie side by side in the array: to the run's end, at most end. */
  private int run(int c, int end) {
    return c < panelCols ? Math.min(end, (c / PANEL_COLS + 1) * PANEL_COLS) - c : end - c;
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
          WeightMatrix m = new WeightMatrix(dtype, OC, C, null, new short[w.length], null, null);
          Parallel.forRange(
              OC,
              64,
              (o0, o1) -> {
                for (int o = o0; o < o1; o++) {
                  for (int c = 0; c < C; c++) {
                    m.bf16[m.index(o, c)] = Bf16.round(w[o * C + c]);
                  }
                }
              });
          return m;
        }
      case INT8:
        {
          int nb = (C + BLOCK - 1) / BLOCK;
          WeightMatrix m =
              new WeightMatrix(dtype, OC, C, null, null, new byte[w.length], new float[OC * nb]);
          Parallel.forRange(OC, 64, (o0, o1) -> m.quantizeRows(w, o0, o1));
          return m;
        }
      default:
        throw new IllegalStateException("unknown dtype " + dtype);
    }
  }

  /** Rows [o0, o1) to int8: per block, scale = max |w| / 127 and q = round(w / scale). */
  private void quantizeRows(float[] w, int o0, int o1) {
    int C = cols;
    for (int o = o0; o < o1; o++) {
      for (int b = 0; b < blocksPerRow; b++) {
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
        scale[scaleIndex(o, b)] = sc;
        float inv = sc == 0f ? 0f : 1f / sc;
        for (int i = c0; i < c1; i++) {
          q[index(o, i - o * C)] = (byte) Math.max(-127, Math.min(127, Math.round(w[i] * inv)));
        }
      }
    }
  }

  /** W[o, c], decoded: the definition the fast paths are checked against. */
  public float get(int o, int c) {
    switch (dtype) {
      case FP32:
        return f32[o * cols + c];
      case BF16:
        return Bf16.widen(bf16[index(o, c)]);
      default:
        return scale[scaleIndex(o, c / BLOCK)] * q[index(o, c)];
    }
  }

  /** dst[off + i] = W[o, c0 + i] for i < n. */
  public void decode(int o, int c0, int n, float[] dst, int off) {
    if (dtype == Dtype.FP32) {
      System.arraycopy(f32, o * cols + c0, dst, off, n);
      return;
    }
    int end = c0 + n;
    for (int c = c0; c < end; ) { // run by run: contiguous in the array, within one int8 block
      int len = run(c, end), i = index(o, c), d = off + c - c0;
      if (dtype == Dtype.BF16) {
        for (int k = 0; k < len; k++) {
          dst[d + k] = Bf16.widen(bf16[i + k]);
        }
      } else {
        len = Math.min(len, (c / BLOCK + 1) * BLOCK - c);
        float sc = scale[scaleIndex(o, c / BLOCK)];
        for (int k = 0; k < len; k++) {
          dst[d + k] = sc * q[i + k];
        }
      }
      c += len;
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
