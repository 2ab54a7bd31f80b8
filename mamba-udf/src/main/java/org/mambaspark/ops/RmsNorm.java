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
  public static void rmsnormForward(float[] out, float[] rstd, float[] inp, float[] weight, int BT, int D, float eps) {
    Parallel.forRange(BT, Math.max(1, 4096 / D), (from, to) -> {
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
}
