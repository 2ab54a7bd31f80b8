package org.mambaspark.kernel;

/**
 * Mamba-2's mixer on the device, as passes of the launch table ({@link StepKernel#plan}): the same
 * records serve a forward over sequences (one pass per layer and operation) and a decode step (L =
 * 1, inside {@link DecodePlan}'s single launch). in_proj, out_proj and the causal conv over xBC are
 * the products and the conv {@link MambaKernel} and {@link StepKernel} already have; these are the
 * rest:
 *
 * <ul>
 *   <li>{@link #P_SSD_SCAN}: Δ = clamp(softplus(δ + dt_bias), time_step_limit) and the SSD
 *       recurrence h_t = exp(Δ_t·A)·h_{t-1} + Δ_t·x_t ⊗ B_t, y_t = h_t·C_t + D·x_t, walked in time
 *       ({@code Ssd.ssdScanReference}, {@code Ssd.ssdStep}; Δ as {@code SsdMixer}'s
 *       timeStepForward). A work-group per (sequence, head), grid-stride; each thread owns S states
 *       apart of one channel p's N (S a power of two, S·P ≤ the group), and a channel's S partial
 *       sums of y meet in local memory. The state (B, H, P, N) is the caller's in {@code state}
 *       (h_0 in, h_L out) or, without one, a scratch area of {@code act} starting from zero;
 *   <li>{@link #P_GATED_NORM}: out = rmsnorm_per_group(y · silu(z)) · weight, a work-group per
 *       (row, group) ({@code GatedRmsNorm.gatedRmsnormForward}).
 * </ul>
 */
public class SsdKernel extends StepKernel {
  static final int P_SSD_SCAN = 20;
  static final int P_GATED_NORM = 21;

  /** This pass's record, when it is one of Mamba-2's. */
  final void ssdPass() {
    int p = planOff + getPassId() * REC;
    int kind = plan[p];
    if (kind == P_SSD_SCAN) {
      ssdScan(p);
    } else if (kind == P_GATED_NORM) {
      gatedNorm(p);
    }
  }

  /**
   * [B, L, H, P, G, N, xbcOff, C, deltaOff, I, yOff, wOff, hOff, inState], planF [lo, hi]: rows b·L
   * + t; x, B, C in the conv output act[xbcOff + row·C ...] = [x (H·P) | B (G·N) | C (G·N)]; δ at
   * act[deltaOff + row·I + h]; y (B·L, H·P) at yOff; dt_bias, A, D (H each) at W[wOff], W[wOff +
   * H], W[wOff + 2H]; the state at hOff in {@code state} when inState is 1, else in {@code act}.
   */
  private void ssdScan(int p) {
    int B = plan[p + 1];
    int L = plan[p + 2];
    int H = plan[p + 3];
    int P = plan[p + 4];
    int G = plan[p + 5];
    int N = plan[p + 6];
    int xbcOff = plan[p + 7];
    int C = plan[p + 8];
    int deltaOff = plan[p + 9];
    int I = plan[p + 10];
    int yOff = plan[p + 11];
    int wOff = plan[p + 12];
    int hOff = plan[p + 13];
    int inState = plan[p + 14];
    float lo = planF[p];
    float hi = planF[p + 1];
    int lid = getLocalId();
    int wg = getLocalSize();
    int S = 1; // splits of N per channel
    while (S * 2 * P <= wg && S * 2 <= N) {
      S = S * 2;
    }
    int s = lid % S;
    int pl = lid / S;
    int perPass = wg / S; // channels a pass over the head's P
    int ED = H * P;
    int hpg = H / G;
    for (int bh = getGroupId(); bh < B * H; bh += getNumGroups()) {
      int b = bh / H;
      int h = bh - b * H;
      int g = h / hpg;
      float bias = W[wOff + h];
      float A = W[wOff + H + h];
      float Dh = W[wOff + 2 * H + h];
      int h0 = hOff + bh * P * N;
      for (int t = 0; t < L; t++) {
        int row = b * L + t;
        float raw = act[deltaOff + row * I + h] + bias;
        float dt = raw;
        if (raw <= 20f) {
          dt = log1p(exp(raw));
        }
        dt = min(max(dt, lo), hi);
        float decay = exp(dt * A);
        int xo = xbcOff + row * C;
        int bo = xo + ED + g * N;
        int co = xo + ED + G * N + g * N;
        for (int p0 = 0; p0 < P; p0 += perPass) {
          int pp = p0 + pl;
          float acc = 0f;
          float x = 0f;
          if (pp < P) {
            x = act[xo + h * P + pp];
            float dtx = dt * x;
            int hi0 = h0 + pp * N;
            for (int n = s; n < N; n += S) {
              int i = hi0 + n;
              float hv = 0f;
              if (inState == 1) {
                hv = state[i];
              } else if (t > 0) {
                hv = act[i];
              }
              hv = decay * hv + dtx * act[bo + n];
              if (inState == 1) {
                state[i] = hv;
              } else {
                act[i] = hv;
              }
              acc += hv * act[co + n];
            }
          }
          if (S > 1) {
            localBarrier();
            lmem[lid] = acc;
            localBarrier();
            if (s == 0) {
              for (int j = 1; j < S; j++) {
                acc += lmem[lid + j];
              }
            }
          }
          if (s == 0 && pp < P) {
            act[yOff + row * ED + h * P + pp] = acc + Dh * x;
          }
        }
      }
    }
  }

  /**
   * [rows, ED, G, yOff, zOff, zStride, outOff, wOff], eps: act[outOff + row·ED + e] = u·r·W[wOff +
   * e], u = y·silu(z) with y at act[yOff + row·ED + e] and z at act[zOff + row·zStride + e], r =
   * 1/sqrt(mean of u² over e's group of ED/G channels + eps).
   */
  private void gatedNorm(int p) {
    int rows = plan[p + 1];
    int ED = plan[p + 2];
    int G = plan[p + 3];
    int yOff = plan[p + 4];
    int zOff = plan[p + 5];
    int zStride = plan[p + 6];
    int outOff = plan[p + 7];
    int wOff = plan[p + 8];
    float eps = planF[p];
    int K = ED / G;
    int lid = getLocalId();
    int wg = getLocalSize();
    for (int rg = getGroupId(); rg < rows * G; rg += getNumGroups()) {
      int row = rg / G;
      int e0 = (rg - row * G) * K;
      int yo = yOff + row * ED + e0;
      int zo = zOff + row * zStride + e0;
      float ss = 0f;
      for (int i = lid; i < K; i += wg) {
        float z = act[zo + i];
        float u = act[yo + i] * (z / (1f + exp(-z)));
        ss += u * u;
      }
      float r = 1f / sqrt(groupSum(ss) / K + eps);
      for (int i = lid; i < K; i += wg) {
        float z = act[zo + i];
        float u = act[yo + i] * (z / (1f + exp(-z)));
        act[outOff + row * ED + e0 + i] = u * r * W[wOff + e0 + i];
      }
      localBarrier();
    }
  }
}
