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
 *       timeStepForward), split by channel (see the pass). The state (B, H, P, N) is the caller's
 *       in {@code state} (h_0 in, h_L out) or, without one, a scratch area of {@code act} starting
 *       from zero;
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

  /** States of one channel a thread keeps in registers in {@link #ssdScan}. */
  static final int SCAN_STATES = 4;

  /** Positions {@link #ssdScan} walks between barriers: its partial sums of y fill T·wg of lmem. */
  static final int SCAN_STEPS = 8;

  /** The largest state size N {@link #ssdScan} takes: every thread of a group on one channel. */
  static final int SCAN_MAX_N = SCAN_STATES * STEP_THREADS;

  /**
   * [B, L, H, P, G, N, xbcOff, C, deltaOff, I, yOff, wOff, hOff, inState], planF [lo, hi]: rows b·L
   * + t; x, B, C in the conv output act[xbcOff + row·C ...] = [x (H·P) | B (G·N) | C (G·N)]; δ at
   * act[deltaOff + row·I + h]; y (B·L, H·P) at yOff; dt_bias, A, D (H each) at W[wOff], W[wOff +
   * H], W[wOff + 2H]; the state at hOff in {@code state} when inState is 1, else in {@code act}
   * (from zero).
   *
   * <p>A channel's N states evolve apart from every other channel's, so the work is split by
   * channel, not only by (sequence, head): S threads share a channel (S a power of two, S·{@value
   * #SCAN_STATES} ≥ N), each keeping its {@value #SCAN_STATES} states n = s, s + S, … in registers
   * for the whole walk, and a work-group takes wg/S channels of one head. Every {@value
   * #SCAN_STEPS} positions, the threads write their partial sums of y_t = Σ_n h_t·C_t to lmem and
   * meet at one barrier; Δ and exp(Δ·A) of those positions are computed once per group, not once
   * per thread.
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
    int wg = STEP_THREADS;
    int S = 1;
    while (S * SCAN_STATES < N) {
      S = S * 2;
    }
    int pc = wg / S; // channels a group
    int s = lid % S;
    int ch = lid / S;
    int blocks = (P + pc - 1) / pc;
    int ED = H * P;
    int hpg = H / G;
    int dtAt = SCAN_STEPS * wg; // Δ of the round's positions, then exp(Δ·A)
    for (int item = getGroupId(); item < B * H * blocks; item += getNumGroups()) {
      int bh = item / blocks;
      int first = (item - bh * blocks) * pc; // the group's first channel
      int pp = first + ch;
      int b = bh / H;
      int h = bh - b * H;
      int g = h / hpg;
      float A = W[wOff + H + h];
      float Dh = W[wOff + 2 * H + h];
      int live = 0;
      if (pp < P) {
        live = 1;
      }
      int si = hOff + (bh * P + pp) * N + s; // this thread's first state
      float h0 = 0f;
      float h1 = 0f;
      float h2 = 0f;
      float h3 = 0f;
      if (live == 1 && inState == 1) {
        h0 = stateIn(si, s, N);
        h1 = stateIn(si + S, s + S, N);
        h2 = stateIn(si + 2 * S, s + 2 * S, N);
        h3 = stateIn(si + 3 * S, s + 3 * S, N);
      }
      for (int t0 = 0; t0 < L; t0 += SCAN_STEPS) {
        int T = min(SCAN_STEPS, L - t0);
        localBarrier(); // the previous round's sums are read
        if (lid < T) {
          float dt = ssdDelta(deltaOff, I, wOff, b * L + t0 + lid, h, lo, hi);
          lmem[dtAt + lid] = dt;
          lmem[dtAt + SCAN_STEPS + lid] = exp(dt * A);
        }
        localBarrier();
        for (int j = 0; j < T; j++) {
          float acc = 0f;
          if (live == 1) {
            int xo = xbcOff + (b * L + t0 + j) * C;
            float dtx = lmem[dtAt + j] * act[xo + h * P + pp];
            float decay = lmem[dtAt + SCAN_STEPS + j];
            int bo = xo + ED + g * N + s;
            int co = bo + G * N;
            if (s < N) {
              h0 = decay * h0 + dtx * act[bo];
              acc += h0 * act[co];
            }
            if (s + S < N) {
              h1 = decay * h1 + dtx * act[bo + S];
              acc += h1 * act[co + S];
            }
            if (s + 2 * S < N) {
              h2 = decay * h2 + dtx * act[bo + 2 * S];
              acc += h2 * act[co + 2 * S];
            }
            if (s + 3 * S < N) {
              h3 = decay * h3 + dtx * act[bo + 3 * S];
              acc += h3 * act[co + 3 * S];
            }
          }
          lmem[j * wg + lid] = acc;
        }
        localBarrier();
        // y of (position j, channel k): its S partial sums, read from a rotated start so that the
        // threads of a warp hit different banks
        for (int o = lid; o < T * pc; o += wg) {
          int j = o / pc;
          int k = o - j * pc;
          if (first + k < P) {
            int base = j * wg + k * S;
            float y = 0f;
            for (int r = 0; r < S; r++) {
              y += lmem[base + (r + k) % S];
            }
            int row = b * L + t0 + j;
            act[yOff + row * ED + h * P + first + k] =
                y + Dh * act[xbcOff + row * C + h * P + first + k];
          }
        }
      }
      if (live == 1) {
        stateOut(si, s, N, inState, h0);
        stateOut(si + S, s + S, N, inState, h1);
        stateOut(si + 2 * S, s + 2 * S, N, inState, h2);
        stateOut(si + 3 * S, s + 3 * S, N, inState, h3);
      }
    }
  }

  /** The carried state's element at i (state index n), or 0 past N. */
  private float stateIn(int i, int n, int N) {
    float v = 0f;
    if (n < N) {
      v = state[i];
    }
    return v;
  }

  /** The scan's final state element v to {@code state} (inState 1) or the act scratch, if n < N. */
  private void stateOut(int i, int n, int N, int inState, float v) {
    if (n < N) {
      if (inState == 1) {
        state[i] = v;
      } else {
        act[i] = v;
      }
    }
  }

  /**
   * Δ of (row, head h) as the forward computes it: clamp(softplus(act[deltaOff + row·I + h] +
   * dt_bias[h]), lo, hi).
   */
  private float ssdDelta(int deltaOff, int I, int wOff, int row, int h, float lo, float hi) {
    float raw = act[deltaOff + row * I + h] + W[wOff + h];
    float dt = raw;
    if (raw <= 20f) {
      dt = log1p(exp(raw));
    }
    return min(max(dt, lo), hi);
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
