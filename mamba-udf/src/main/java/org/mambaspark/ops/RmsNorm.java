package org.mambaspark.ops;

/** RMSNorm (HF {@code MambaRMSNorm}): out = inp / sqrt(mean(inp²) + eps) · weight, per row of D. */
public final class RmsNorm {
  private RmsNorm() {}

  /**
   * @param out (BT, D)
   * @param rstd (BT) the saved 1/rms per row, for the backward pass; may be null
   * @param inp (BT, D)
   * @param weight (D)
   */
  public static void rmsnormForward(
      float[] out, float[] rstd, float[] inp, float[] weight, int BT, int D, float eps) {
    Parallel.forRange(
        BT,
        Math.max(1, 4096 / D),
        (from, to) -> {
          for (int t = from; t < to; t++) {
            int o = t * D;
            float ss = 0f;
            for (int i = 0; i < D; i++) {
              float v = inp[o + i];
              ss += v * v;
            }
            float r = (float) (1.0 / Math.sqrt(ss / D + eps));
            for (int i = 0; i < D; i++) {
              out[o + i] = inp[o + i] * r * weight[i];
            }
            if (rstd != null) {
              rstd[t] = r;
            }
          }
        });
  }

  /**
   * Accumulates (+=) the gradients of {@link #rmsnormForward}: with r = rstd and g = dout · weight,
   * dinp = r·g − r³/D · inp · Σ(g · inp), dweight = Σ_t dout · inp · r.
   *
   * @param dinp (BT, D) +=
   * @param dweight (D) +=
   * @param dout (BT, D)
   * @param inp (BT, D) the forward's input
   * @param rstd (BT) saved by the forward
   */
  public static void rmsnormBackward(
      float[] dinp,
      float[] dweight,
      float[] dout,
      float[] inp,
      float[] weight,
      float[] rstd,
      int BT,
      int D) {
    int rowsPerBlock = 256, blocks = (BT + rowsPerBlock - 1) / rowsPerBlock;
    float[][] dw = new float[blocks][D]; // per-block partials of dweight, added in block order
    Parallel.forEachBlock(
        blocks,
        blk -> {
          float[] dwb = dw[blk];
          for (int t = blk * rowsPerBlock, end = Math.min(BT, t + rowsPerBlock); t < end; t++) {
            int o = t * D;
            float r = rstd[t];
            float dot = 0f; // Σ_i dout·w·x
            for (int i = 0; i < D; i++) {
              dot += dout[o + i] * weight[i] * inp[o + i];
            }
            float c = r * r * r * dot / D;
            for (int i = 0; i < D; i++) {
              dinp[o + i] += r * weight[i] * dout[o + i] - c * inp[o + i];
              dwb[i] += dout[o + i] * inp[o + i] * r;
            }
          }
        });
    for (float[] dwb : dw) {
      for (int i = 0; i < D; i++) {
        dweight[i] += dwb[i];
      }
    }
  }

  /**
   * Weightless RMSNorm of one column block of each row (Falcon-Mamba's norms on Δ's input, B and C
   * inside x_proj's output): out[t·stride + off + i] = inp[...] · r_t, r_t = 1/sqrt(mean_i inp² +
   * eps), i in [0, n).
   *
   * @param out (BT, stride), only columns [off, off+n) written
   * @param rstd r_t at rstd[rstdOff + t], saved for the backward pass
   * @param inp (BT, stride)
   */
  public static void rmsnormColumnsForward(
      float[] out,
      float[] rstd,
      int rstdOff,
      float[] inp,
      int off,
      int stride,
      int BT,
      int n,
      float eps) {
    Parallel.forRange(
        BT,
        Math.max(1, 4096 / n),
        (from, to) -> {
          for (int t = from; t < to; t++) {
            int o = t * stride + off;
            float ss = 0f;
            for (int i = 0; i < n; i++) {
              float v = inp[o + i];
              ss += v * v;
            }
            float r = (float) (1.0 / Math.sqrt(ss / n + eps));
            for (int i = 0; i < n; i++) {
              out[o + i] = inp[o + i] * r;
            }
            rstd[rstdOff + t] = r;
          }
        });
  }

  /**
   * Accumulates (+=) the gradient of {@link #rmsnormColumnsForward}: dinp = r·dout − r³/n · inp ·
   * Σ(dout · inp), over the same column block.
   */
  public static void rmsnormColumnsBackward(
      float[] dinp,
      float[] dout,
      float[] inp,
      float[] rstd,
      int rstdOff,
      int off,
      int stride,
      int BT,
      int n) {
    Parallel.forRange(
        BT,
        Math.max(1, 4096 / n),
        (from, to) -> {
          for (int t = from; t < to; t++) {
            int o = t * stride + off;
            float r = rstd[rstdOff + t];
            float dot = 0f;
            for (int i = 0; i < n; i++) {
              dot += dout[o + i] * inp[o + i];
            }
            float c = r * r * r * dot / n;
            for (int i = 0; i < n; i++) {
              dinp[o + i] += r * dout[o + i] - c * inp[o + i];
            }
          }
        });
  }
}
