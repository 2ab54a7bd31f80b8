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
 *
 * <p>The training backward's passes (one launch a layer, {@link SsdRecords#backward}), each the
 * gradient of the pass above it read in reverse:
 *
 * <ul>
 *   <li>{@link #P_GATED_NORM_BWD}: dy and dz of the gated norm, and each row's term of d weight
 *       (summed over rows by the column-sum op), a work-group per (row, group) ({@code
 *       GatedRmsNorm.gatedRmsnormBackward});
 *   <li>{@link #P_SSD_STATES_BWD}, per chunk of Q positions from the last: a thread per (sequence,
 *       head, channel p) recomputes its N states over the chunk from the state the forward saved at
 *       the chunk's start, then walks the chunk backwards carrying dh_t = exp(Δ_{t+1}·A)·dh_{t+1} +
 *       dy_t·C_t: dx, its term of dΔ (summed over p by {@link #P_SSD_DT_BWD}) and its partial sums
 *       of dA and dD (summed by {@link #P_SSD_PARAM_BWD}), keeping h_t and dh_t of the chunk for
 *       {@link #P_SSD_BC_BWD};
 *   <li>{@link #P_SSD_BC_BWD}: dB_t and dC_t of a chunk, a thread per (sequence, position, group,
 *       n) summing over the group's heads and their channels — no atomics;
 *   <li>{@link #P_SSD_DT_BWD}: dΔ through the clamp and the softplus into dδ (in_proj's gradient);
 *   <li>{@link #P_SSD_PARAM_BWD}: dA_log = A·Σ dA and dD, a thread per head.
 * </ul>
 *
 * Checked against {@code SsdMixer.backward} (and through it the fixtures) by the GPU backend's
 * tests.
 */
public class SsdKernel extends StepKernel {
  // Kinds from P_SSD_SCAN up are this class's; MambaKernel.run sends the smaller ones to step().
  static final int P_SSD_SCAN = 20;
  static final int P_GATED_NORM = 21;
  static final int P_GATED_NORM_BWD = 22;
  static final int P_SSD_STATES_BWD = 23;
  static final int P_SSD_BC_BWD = 24;
  static final int P_SSD_DT_BWD = 25;
  static final int P_SSD_PARAM_BWD = 26;

  /** This pass's record, when it is one of Mamba-2's. */
  final void ssdPass() {
    int p = planOff + getPassId() * REC;
    int kind = plan[p];
    if (kind == P_SSD_SCAN) {
      ssdScan(p);
    } else if (kind == P_GATED_NORM) {
      gatedNorm(p);
    } else if (kind == P_GATED_NORM_BWD) {
      gatedNormBackward(p);
    } else if (kind == P_SSD_STATES_BWD) {
      ssdStatesBackward(p);
    } else if (kind == P_SSD_BC_BWD) {
      ssdBcBackward(p);
    } else if (kind == P_SSD_DT_BWD) {
      ssdDtBackward(p);
    } else if (kind == P_SSD_PARAM_BWD) {
      ssdParamBackward(p);
    }
  }

  /** States of one channel a thread keeps in registers in {@link #ssdScan}. */
  static final int SCAN_STATES = 4;

  /** The most positions {@link #ssdScan} walks between two barriers. */
  static final int SCAN_STEPS = 8;

  /**
   * Local floats of a launch that holds the forward's scans: 8 positions of staged B, C, x and Δ
   * and of partial sums for N up to 128 (fewer positions a round for larger N).
   */
  static final int SCAN_LOCAL = 17 * STEP_THREADS + 64;

  /**
   * The largest state size N {@link #ssdScan} takes: one position's staging must fit a step
   * launch's local memory ({@link #STEP_LOCAL}), and the states its threads' registers.
   */
  static final int SCAN_MAX_N = 512;

  /**
   * [B, L, H, P, G, N, xbcOff, C, deltaOff, I, yOff, wOff, hOff, inState, saveOff, Q, localFloats],
   * planF [lo, hi]: rows b·L + t; x, B, C in the conv output act[xbcOff + row·C ...] = [x (H·P) | B
   * (G·N) | C (G·N)]; δ at act[deltaOff + row·I + h]; y (B·L, H·P) at yOff; dt_bias, A, D (H each)
   * at W[wOff], W[wOff + H], W[wOff + 2H]; the state at hOff in {@code state} when inState is 1,
   * else in {@code act} (from zero), or not kept when hOff is -1 (a scoring forward). With saveOff
   * ≥ 0 (training) the state before each chunk of Q positions goes to act[saveOff ...] as (B,
   * chunks, H, P, N), for the backward. localFloats: the launch's lmem floats.
   *
   * <p>A channel's N states evolve apart from every other channel's, so the work is split by
   * channel, not only by (sequence, head): S threads share a channel (S a power of two, S·{@value
   * #SCAN_STATES} ≥ N), each keeping its {@value #SCAN_STATES} states n = s, s + S, … in registers
   * for the whole walk, and a work-group takes wg/S channels of one head. The walk goes in rounds
   * of T ≤ {@value #SCAN_STEPS} positions: the group stages the round's B_t and C_t (its group's),
   * its channels' x_t, Δ_t and exp(Δ_t·A) in lmem with coalesced loads (so the recurrence waits on
   * local memory, not on device memory, and each exponential is computed once a group), walks the T
   * positions writing each thread's partial sum of y_t = Σ_n h_t·C_t to lmem, and then sums a
   * channel's S partials.
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
    int saveOff = plan[p + 15];
    int Q = plan[p + 16];
    int localFloats = plan[p + 17]; // ('local' is an OpenCL keyword)
    int nQ = (L + Q - 1) / Q;
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
    // lmem: partial sums (tMax·wg) | Δ (tMax) | exp(Δ·A) (tMax) | B (tMax·N) | C (tMax·N) | x
    // (tMax·pc)
    int tMax = min(SCAN_STEPS, localFloats / (wg + 2 + 2 * N + pc));
    int dtAt = tMax * wg;
    int decayAt = dtAt + tMax;
    int bAt = decayAt + tMax;
    int cAt = bAt + tMax * N;
    int xAt = cAt + tMax * N;
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
      for (int t0 = 0; t0 < L; t0 += tMax) {
        int T = min(tMax, L - t0);
        int xo0 = xbcOff + (b * L + t0) * C;
        localBarrier(); // the previous round's sums are read
        for (int o = lid; o < T * N; o += wg) {
          int j = o / N;
          int src = xo0 + j * C + ED + g * N + o - j * N;
          lmem[bAt + o] = act[src];
          lmem[cAt + o] = act[src + G * N];
        }
        for (int o = lid; o < T * pc; o += wg) {
          int j = o / pc;
          int k = o - j * pc;
          float x = 0f;
          if (first + k < P) {
            x = act[xo0 + j * C + h * P + first + k];
          }
          lmem[xAt + o] = x;
        }
        if (lid < T) {
          float dt = ssdDelta(deltaOff, I, wOff, b * L + t0 + lid, h, lo, hi);
          lmem[dtAt + lid] = dt;
          lmem[decayAt + lid] = exp(dt * A);
        }
        localBarrier();
        for (int j = 0; j < T; j++) {
          float acc = 0f;
          if (live == 1) {
            if (saveOff >= 0 && (t0 + j) % Q == 0) {
              int sv = saveOff + ((b * nQ + (t0 + j) / Q) * ED + h * P + pp) * N + s;
              stateOut(sv, s, N, 0, h0);
              stateOut(sv + S, s + S, N, 0, h1);
              stateOut(sv + 2 * S, s + 2 * S, N, 0, h2);
              stateOut(sv + 3 * S, s + 3 * S, N, 0, h3);
            }
            float dtx = lmem[dtAt + j] * lmem[xAt + j * pc + ch];
            float decay = lmem[decayAt + j];
            int bo = bAt + j * N + s;
            int co = cAt + j * N + s;
            if (s < N) {
              h0 = decay * h0 + dtx * lmem[bo];
              acc += h0 * lmem[co];
            }
            if (s + S < N) {
              h1 = decay * h1 + dtx * lmem[bo + S];
              acc += h1 * lmem[co + S];
            }
            if (s + 2 * S < N) {
              h2 = decay * h2 + dtx * lmem[bo + 2 * S];
              acc += h2 * lmem[co + 2 * S];
            }
            if (s + 3 * S < N) {
              h3 = decay * h3 + dtx * lmem[bo + 3 * S];
              acc += h3 * lmem[co + 3 * S];
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
              y += lmem[base + ((r + k) & (S - 1))];
            }
            act[yOff + (b * L + t0 + j) * ED + h * P + first + k] = y + Dh * lmem[xAt + o];
          }
        }
      }
      if (live == 1 && hOff >= 0) {
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

  /** A state element v (index n) to {@code state} (inState 1) or to act, if n < N. */
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

  /**
   * [rows, ED, G, yOff, zOff, zStride, wOff, doutOff, dyOff, dzOff, dzStride, dwOff], eps: the
   * gradient of {@link #gatedNorm} from its output's gradient gact[doutOff + row·ED + e]: with u =
   * y·silu(z), r its group's 1/rms (recomputed) and c = r³/K·Σ_group dout·weight·u, du = r·weight·
   * dout − c·u, gact[dyOff ...] = du·silu(z), gact[dzOff + row·dzStride + e] = du·y·silu'(z), and
   * gact[dwOff + row·ED + e] = dout·u·r (the row's term of d weight).
   */
  private void gatedNormBackward(int p) {
    int rows = plan[p + 1];
    int ED = plan[p + 2];
    int G = plan[p + 3];
    int yOff = plan[p + 4];
    int zOff = plan[p + 5];
    int zStride = plan[p + 6];
    int wOff = plan[p + 7];
    int doutOff = plan[p + 8];
    int dyOff = plan[p + 9];
    int dzOff = plan[p + 10];
    int dzStride = plan[p + 11];
    int dwOff = plan[p + 12];
    float eps = planF[p];
    int K = ED / G;
    int lid = getLocalId();
    int wg = getLocalSize();
    for (int rg = getGroupId(); rg < rows * G; rg += getNumGroups()) {
      int row = rg / G;
      int e0 = (rg - row * G) * K;
      int yo = yOff + row * ED + e0;
      int zo = zOff + row * zStride + e0;
      int go = row * ED + e0;
      float ss = 0f;
      float dot = 0f;
      for (int i = lid; i < K; i += wg) {
        float z = act[zo + i];
        float u = act[yo + i] * (z / (1f + exp(-z)));
        ss += u * u;
        dot += gact[doutOff + go + i] * W[wOff + e0 + i] * u;
      }
      float r = 1f / sqrt(groupSum(ss) / K + eps);
      float c = r * r * r * groupSum(dot) / K;
      for (int i = lid; i < K; i += wg) {
        float z = act[zo + i];
        float y = act[yo + i];
        float sg = 1f / (1f + exp(-z));
        float u = y * z * sg;
        float dout = gact[doutOff + go + i];
        float du = r * W[wOff + e0 + i] * dout - c * u;
        gact[dyOff + go + i] = du * z * sg;
        gact[dzOff + row * dzStride + e0 + i] = du * y * sg * (1f + z * (1f - sg));
        gact[dwOff + go + i] = dout * u * r;
      }
      localBarrier();
    }
  }

  /**
   * [B, L, H, P, G, N, xbcOff, C, deltaOff, I, wOff, saveOff, Q, k, dyOff, dxbcOff, ddtOff, hsOff,
   * dhOff, carryOff, dAOff, dDOff], planF [lo, hi]: chunk k (positions [kQ, kQ + Q) ∩ [0, L)) of
   * the SSD scan's backward, a thread per (b, h, p) = b·H·P + e; chunks run from the last. Inputs
   * as {@link #ssdScan}'s, the chunk-start states at saveOff, dy (B·L, H·P) at gact[dyOff]. Writes
   * dx into gact[dxbcOff + row·C + e]; Σ_n dh·(x·B + A·exp(ΔA)·h_{t−1}) (dΔ's term) at gact[ddtOff
   * + row·H·P + e]; h_t and dh_t of the chunk at gact[hsOff / dhOff + ((b·H·P + e)·Q + t − kQ)·N +
   * n]; dh of the chunk's first position (the next chunk's carry) at gact[carryOff + (b·H·P + e)·N
   * + n]; and the running Σ_t of Δ·exp(ΔA)·Σ_n dh·h_{t−1} (dA) and of dy·x (dD) at gact[dAOff /
   * dDOff + b·H·P + e].
   */
  private void ssdStatesBackward(int p) {
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
    int wOff = plan[p + 11];
    int saveOff = plan[p + 12];
    int Q = plan[p + 13];
    int k = plan[p + 14];
    int dyOff = plan[p + 15];
    int dxbcOff = plan[p + 16];
    int ddtOff = plan[p + 17];
    int hsOff = plan[p + 18];
    int dhOff = plan[p + 19];
    int carryOff = plan[p + 20];
    int dAOff = plan[p + 21];
    int dDOff = plan[p + 22];
    float lo = planF[p];
    float hi = planF[p + 1];
    int ED = H * P;
    int hpg = H / G;
    int nQ = (L + Q - 1) / Q;
    int t0 = k * Q;
    int t1 = min(L, t0 + Q);
    for (int bhp = getGlobalId(); bhp < B * ED; bhp += getGlobalSize()) {
      int b = bhp / ED;
      int e = bhp - b * ED;
      int h = e / P;
      int g = h / hpg;
      float A = W[wOff + H + h];
      float Dh = W[wOff + 2 * H + h];
      int sv = saveOff + ((b * nQ + k) * ED + e) * N;
      int hs = hsOff + bhp * Q * N;
      int dhs = dhOff + bhp * Q * N;
      int carry = carryOff + bhp * N;
      // the chunk's states, from the one saved at its start
      for (int t = t0; t < t1; t++) {
        int row = b * L + t;
        float dt = ssdDelta(deltaOff, I, wOff, row, h, lo, hi);
        float decay = exp(dt * A);
        float dtx = dt * act[xbcOff + row * C + e];
        int bo = xbcOff + row * C + ED + g * N;
        int cur = hs + (t - t0) * N;
        for (int n = 0; n < N; n++) {
          float prev = 0f;
          if (t == t0) {
            prev = act[sv + n];
          } else {
            prev = gact[cur - N + n];
          }
          gact[cur + n] = decay * prev + dtx * act[bo + n];
        }
      }
      // backwards through the chunk
      float aNext = 0f; // exp(Δ_{t+1}·A): 0 after the last position
      float sumA = 0f;
      float sumD = 0f;
      if (t1 < L) {
        aNext = exp(ssdDelta(deltaOff, I, wOff, b * L + t1, h, lo, hi) * A);
        sumA = gact[dAOff + bhp];
        sumD = gact[dDOff + bhp];
      }
      for (int t = t1 - 1; t >= t0; t--) {
        int row = b * L + t;
        float dt = ssdDelta(deltaOff, I, wOff, row, h, lo, hi);
        float decay = exp(dt * A);
        float x = act[xbcOff + row * C + e];
        float dy = gact[dyOff + row * ED + e];
        int bo = xbcOff + row * C + ED + g * N;
        int co = bo + G * N;
        int cur = hs + (t - t0) * N;
        int dcur = dhs + (t - t0) * N;
        float sumB = 0f; // Σ_n dh·B
        float sumH = 0f; // Σ_n dh·h_{t−1}
        for (int n = 0; n < N; n++) {
          float dh = dy * act[co + n];
          if (aNext != 0f) {
            dh += aNext * gact[carry + n];
          }
          gact[carry + n] = dh;
          gact[dcur + n] = dh;
          float prev = 0f;
          if (t == t0) {
            prev = act[sv + n];
          } else {
            prev = gact[cur - N + n];
          }
          sumB += dh * act[bo + n];
          sumH += dh * prev;
        }
        gact[dxbcOff + row * C + e] = dt * sumB + Dh * dy;
        gact[ddtOff + row * ED + e] = x * sumB + A * decay * sumH;
        sumA += dt * decay * sumH;
        sumD += dy * x;
        aNext = decay;
      }
      gact[dAOff + bhp] = sumA;
      gact[dDOff + bhp] = sumD;
    }
  }

  /**
   * [B, L, H, P, G, N, xbcOff, C, deltaOff, I, wOff, Q, k, dyOff, dxbcOff, hsOff, dhOff], planF
   * [lo, hi]: dB_t = Σ_{h of g} Δ_t,h·Σ_p dh_t·x_t and dC_t = Σ_{h of g} Σ_p dy_t·h_t for the
   * positions of chunk k, from {@link #ssdStatesBackward}'s h_t and dh_t, into gact[dxbcOff + row·C
   * + ED (+ G·N) + g·N + n]; a thread per (b, position, g, n).
   */
  private void ssdBcBackward(int p) {
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
    int wOff = plan[p + 11];
    int Q = plan[p + 12];
    int k = plan[p + 13];
    int dyOff = plan[p + 14];
    int dxbcOff = plan[p + 15];
    int hsOff = plan[p + 16];
    int dhOff = plan[p + 17];
    float lo = planF[p];
    float hi = planF[p + 1];
    int ED = H * P;
    int hpg = H / G;
    int t0 = k * Q;
    int q = min(L, t0 + Q) - t0;
    for (int i = getGlobalId(); i < B * q * G * N; i += getGlobalSize()) {
      int n = i % N;
      int g = (i / N) % G;
      int tt = (i / (N * G)) % q;
      int b = i / (N * G * q);
      int row = b * L + t0 + tt;
      float dB = 0f;
      float dC = 0f;
      for (int h = g * hpg; h < (g + 1) * hpg; h++) {
        float sx = 0f;
        for (int pp = 0; pp < P; pp++) {
          int e = h * P + pp;
          int s = ((b * ED + e) * Q + tt) * N + n;
          sx += gact[dhOff + s] * act[xbcOff + row * C + e];
          dC += gact[dyOff + row * ED + e] * gact[hsOff + s];
        }
        dB += ssdDelta(deltaOff, I, wOff, row, h, lo, hi) * sx;
      }
      gact[dxbcOff + row * C + ED + g * N + n] = dB;
      gact[dxbcOff + row * C + ED + G * N + g * N + n] = dC;
    }
  }

  /**
   * [rows, H, P, deltaOff, I, wOff, ddtOff, dOff], planF [lo, hi]: dΔ = Σ_p of {@link
   * #ssdStatesBackward}'s terms, through the clamp (zero where softplus is outside [lo, hi], as
   * torch.clamp) and the softplus, into dδ at gact[dOff + row·I + h]; a thread per (row, h).
   */
  private void ssdDtBackward(int p) {
    int rows = plan[p + 1];
    int H = plan[p + 2];
    int P = plan[p + 3];
    int deltaOff = plan[p + 4];
    int I = plan[p + 5];
    int wOff = plan[p + 6];
    int ddtOff = plan[p + 7];
    int dOff = plan[p + 8];
    float lo = planF[p];
    float hi = planF[p + 1];
    for (int i = getGlobalId(); i < rows * H; i += getGlobalSize()) {
      int row = i / H;
      int h = i - row * H;
      float d = 0f;
      for (int pp = 0; pp < P; pp++) {
        d += gact[ddtOff + row * H * P + h * P + pp];
      }
      float raw = act[deltaOff + row * I + h] + W[wOff + h];
      float sp = raw;
      if (raw <= 20f) {
        sp = log1p(exp(raw));
        d = d / (1f + exp(-raw));
      }
      if (sp < lo || sp > hi) {
        d = 0f;
      }
      gact[dOff + row * I + h] = d;
    }
  }

  /**
   * [B, H, P, wOff, dAOff, dDOff]: G[wOff + H + h] += A_h·Σ_{b,p} dA (A = −exp(A_log), so this is d
   * A_log) and G[wOff + 2H + h] += Σ_{b,p} dD, from {@link #ssdStatesBackward}'s sums; a thread per
   * head.
   */
  private void ssdParamBackward(int p) {
    int B = plan[p + 1];
    int H = plan[p + 2];
    int P = plan[p + 3];
    int wOff = plan[p + 4];
    int dAOff = plan[p + 5];
    int dDOff = plan[p + 6];
    for (int h = getGlobalId(); h < H; h += getGlobalSize()) {
      float sA = 0f;
      float sD = 0f;
      for (int b = 0; b < B; b++) {
        for (int pp = 0; pp < P; pp++) {
          int i = (b * H + h) * P + pp;
          sA += gact[dAOff + i];
          sD += gact[dDOff + i];
        }
      }
      G[wOff + H + h] += W[wOff + H + h] * sA;
      G[wOff + 2 * H + h] += sD;
    }
  }
}
