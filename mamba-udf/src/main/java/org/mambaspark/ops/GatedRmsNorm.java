package org.mambaspark.ops;

/**
 * Mamba-2's gated RMSNorm (mamba_ssm's RMSNormGated with the gate applied before the norm): u = y ·
 * silu(z), then each group of K = ED/G channels of a row is normalised by its own rms, out = u /
 * sqrt(mean_group(u²) + eps) · weight. With G = 1 it is RMSNorm of the gated y.
 */
public final class GatedRmsNorm {
  private GatedRmsNorm() {}

  /**
   * @param out (BT, ED)
   * @param rstd (BT, G) the saved 1/rms per row and group, for the backward; may be null
   * @param y (BT, ED) the scan's output
   * @param z the gate, at z[zOff + t·zStride + e] (the z columns of in_proj's output)
   * @param weight (ED)
   * @param G groups; ED must be a multiple of G
   */
  public static void gatedRmsnormForward(
      float[] out,
      float[] rstd,
      float[] y,
      float[] z,
      int zOff,
      int zStride,
      float[] weight,
      int BT,
      int ED,
      int G,
      float eps) {
    int K = groupSize(ED, G);
    Parallel.forRange(
        BT,
        Math.max(1, 4096 / ED),
        (from, to) -> {
          float[] u = new float[ED];
          for (int t = from; t < to; t++) {
            int o = t * ED;
            gate(u, y, o, z, zOff + t * zStride, ED);
            for (int g = 0; g < G; g++) {
              int e0 = g * K;
              float ss = 0f;
              for (int e = e0; e < e0 + K; e++) {
                ss += u[e] * u[e];
              }
              float r = (float) (1.0 / Math.sqrt(ss / K + eps));
              for (int e = e0; e < e0 + K; e++) {
                out[o + e] = u[e] * r * weight[e];
              }
              if (rstd != null) {
                rstd[t * G + g] = r;
              }
            }
          }
        });
  }

  /**
   * Accumulates (+=) the gradients of {@link #gatedRmsnormForward}. Per group, with r = rstd, u = y
   * · silu(z) and c = r³/K · Σ_group dout·weight·u: du = r·weight·dout − c·u, dy = du · silu(z), dz
   * = du · y · silu'(z), dweight = Σ_t dout · u · r.
   *
   * @param dy (BT, ED) +=
   * @param dz at dz[dzOff + t·dzStride + e] +=
   * @param dweight (ED) +=
   * @param dout (BT, ED) the gradient of out
   * @param rstd (BT, G) saved by the forward
   */
  public static void gatedRmsnormBackward(
      float[] dy,
      float[] dz,
      int dzOff,
      int dzStride,
      float[] dweight,
      float[] dout,
      float[] y,
      float[] z,
      int zOff,
      int zStride,
      float[] weight,
      float[] rstd,
      int BT,
      int ED,
      int G) {
    int K = groupSize(ED, G);
    int rowsPerBlock = 64, blocks = (BT + rowsPerBlock - 1) / rowsPerBlock;
    float[][] dw = new float[blocks][]; // per-block partials of dweight, added in block order
    Parallel.forEachBlock(
        blocks,
        blk -> {
          float[] dwb = new float[ED];
          dw[blk] = dwb;
          float[] u = new float[ED];
          for (int t = blk * rowsPerBlock, end = Math.min(BT, t + rowsPerBlock); t < end; t++) {
            int o = t * ED, zo = zOff + t * zStride, dzo = dzOff + t * dzStride;
            gate(u, y, o, z, zo, ED);
            for (int g = 0; g < G; g++) {
              int e0 = g * K;
              float r = rstd[t * G + g];
              float dot = 0f; // Σ_group dout·weight·u
              for (int e = e0; e < e0 + K; e++) {
                dot += dout[o + e] * weight[e] * u[e];
              }
              float c = r * r * r * dot / K;
              for (int e = e0; e < e0 + K; e++) {
                float du = r * weight[e] * dout[o + e] - c * u[e];
                float zz = z[zo + e];
                dy[o + e] += du * Activations.silu(zz);
                dz[dzo + e] += du * y[o + e] * Activations.siluGrad(zz);
                dwb[e] += dout[o + e] * u[e] * r;
              }
            }
          }
        });
    for (float[] dwb : dw) {
      for (int e = 0; e < ED; e++) {
        dweight[e] += dwb[e];
      }
    }
  }

  /** u = y[o ..] · silu(z[zo ..]) over one row of ED. */
  private static void gate(float[] u, float[] y, int o, float[] z, int zo, int ED) {
    for (int e = 0; e < ED; e++) {
      u[e] = y[o + e] * Activations.silu(z[zo + e]);
    }
  }

  private static int groupSize(int ED, int G) {
    if (G <= 0 || ED <= 0 || ED % G != 0) {
      throw new IllegalArgumentException(
          "gated rmsnorm: d_inner " + ED + " is not a positive multiple of n_groups " + G);
    }
    return ED / G;
  }
}
