package org.mambaspark.kernel;

/**
 * The general-tiling scans (any ce × S × I; one local-memory scan per state), the reference the
 * model's version 4 ({@link ScanKernel#scanForward4}, {@link ScanKernel#scanBackward4}, which share
 * each chunk's barriers among the N states and need I = 4) was derived from and is tested against;
 * {@link DeviceScan} and the benchmarks run both.
 */
public class ScanKernelV1 extends ScanKernel {
  static final int OP_SCAN_FWD = 1;
  static final int OP_SCAN_BWD = 2;

  @Override
  public void run() {
    if (op == OP_SCAN_FWD) {
      scanForward();
    } else if (op == OP_SCAN_BWD) {
      scanBackward();
    } else if (op == OP_SCAN_BWD_REDUCE) {
      scanBackwardReduce();
    } else if (op == OP_SCAN_FWD4) {
      scanForward4();
    } else if (op == OP_SCAN_BWD4) {
      scanBackward4();
    } else if (op == OP_SCAN_BWD_CARRY) {
      scanBackwardCarry();
    }
  }

  /** Local floats the forward needs for a tiling (the owner checks it against lmem). */
  static int scanForwardLocal(int ce, int S, int I, int N) {
    return 4 * S * (I + 1) * ce + S * (I * 2 * N + 1) + 4 * S * ce + ce * N;
  }

  /** Local floats the backward needs for a tiling. */
  static int scanBackwardLocal(int ce, int S, int I, int N) {
    return 10 * S * (I + 1) * ce
        + S * (I * 2 * N + 1)
        + S * I * 2 * N
        + 4 * S * ce
        + ce * N
        + S * ce * N
        + S * ce;
  }

  /**
   * One work-group per (b, block of ce channels), ce·S threads. Local memory, per chunk: Δ, x, y, a
   * per (position, channel), segments padded by one position against bank conflicts; B|C per
   * position; the segment aggregates (two ping-pong buffers of (a, u)); the running state (N, ce).
   */
  final void scanForward() {
    int lid = getLocalId();
    int wg = getLocalSize();
    int g = getGroupId();
    int ce = sCe;
    int S = sSeg;
    int I = sItems;
    int T = S * I;
    int N = sN;
    int ED = sED;
    int L = sL;
    int nEb = (ED + ce - 1) / ce;
    int b = g / nEb;
    int e0 = (g - b * nEb) * ce;
    int s = lid / ce;
    int ci = lid - s * ce;
    int e = e0 + ci;
    int segW = (I + 1) * ce;
    int chW = S * segW;
    int bcSeg = I * 2 * N + 1;
    int oDt = 0;
    int oX = chW;
    int oY = 2 * chW;
    int oA = 3 * chW;
    int oBc = 4 * chW;
    int oAgg = oBc + S * bcSeg;
    int oCarry = oAgg + 4 * S * ce;
    int aggW = 2 * S * ce; // one ping-pong buffer: a at [0, S·ce), u at [S·ce, 2S·ce)

    for (int j = lid; j < ce * N; j += wg) {
      int n = j / ce;
      int e2 = e0 + j - n * ce;
      float h0 = 0f;
      if (sHasState == 1 && e2 < ED) {
        h0 = state[hOff + (b * N + n) * ED + e2];
      }
      lmem[oCarry + j] = h0;
    }
    for (int c = 0; c < sChunks; c++) {
      int t0 = c * T;
      localBarrier();
      for (int j = lid; j < T * ce; j += wg) {
        int tt = j / ce;
        int c2 = j - tt * ce;
        int t = t0 + tt;
        int e2 = e0 + c2;
        int sg = tt / I;
        int li = sg * segW + (tt - sg * I) * ce + c2;
        float dtv = 0f;
        float xv = 0f;
        float yv = 0f;
        if (t < L && e2 < ED) {
          int gi = (b * L + t) * ED + e2;
          dtv = act[dtOff + gi];
          xv = act[uOff + gi];
          yv = W[dOff + e2] * xv;
        }
        lmem[oDt + li] = dtv;
        lmem[oX + li] = xv;
        lmem[oY + li] = yv;
      }
      for (int j = lid; j < T * 2 * N; j += wg) {
        int tt = j / (2 * N);
        int k = j - tt * 2 * N;
        int t = t0 + tt;
        int sg = tt / I;
        float v = 0f;
        if (t < L) {
          v = act[dbcOff + (b * L + t) * sP + sR + k];
        }
        lmem[oBc + sg * bcSeg + (tt - sg * I) * 2 * N + k] = v;
      }
      localBarrier();
      for (int n = 0; n < N; n++) {
        float a2 = 0f;
        if (e < ED) {
          a2 = W[a2Off + n * ED + e];
        }
        int bc0 = oBc + s * bcSeg + n;
        int li0 = s * segW + ci;
        // walk 1: this segment's composed pair, from the identity
        float pa = 1f;
        float pu = 0f;
        for (int i = 0; i < I; i++) {
          int li = li0 + i * ce;
          float dtv = lmem[oDt + li];
          float a = exp2(dtv * a2);
          lmem[oA + li] = a;
          pu = a * pu + dtv * lmem[bc0 + i * 2 * N] * lmem[oX + li];
          pa = a * pa;
        }
        float cin = lmem[oCarry + n * ce + ci];
        lmem[oAgg + s * ce + ci] = pa;
        lmem[oAgg + S * ce + s * ce + ci] = pu;
        localBarrier();
        // inclusive scan of the segment pairs across threads
        int src = 0;
        for (int off = 1; off < S; off = off * 2) {
          int rs = oAgg + src * aggW;
          int wsb = oAgg + (1 - src) * aggW;
          float ai = lmem[rs + s * ce + ci];
          float ui = lmem[rs + S * ce + s * ce + ci];
          if (s >= off) {
            float ap = lmem[rs + (s - off) * ce + ci];
            float up = lmem[rs + S * ce + (s - off) * ce + ci];
            ui = ai * up + ui;
            ai = ai * ap;
          }
          lmem[wsb + s * ce + ci] = ai;
          lmem[wsb + S * ce + s * ce + ci] = ui;
          localBarrier();
          src = 1 - src;
        }
        float h = cin;
        if (s > 0) {
          int rs = oAgg + src * aggW;
          h = lmem[rs + (s - 1) * ce + ci] * cin + lmem[rs + S * ce + (s - 1) * ce + ci];
        }
        if (sSave == 1 && s == 0 && e < ED) {
          act[hcOff + ((b * sChunks + c) * N + n) * ED + e] = cin;
        }
        // walk 2: the states from the segment's entering state; y += C·h
        for (int i = 0; i < I; i++) {
          int li = li0 + i * ce;
          h = lmem[oA + li] * h + lmem[oDt + li] * lmem[bc0 + i * 2 * N] * lmem[oX + li];
          lmem[oY + li] += lmem[bc0 + N + i * 2 * N] * h;
        }
        if (s == S - 1) {
          lmem[oCarry + n * ce + ci] = h;
        }
        localBarrier();
      }
      for (int j = lid; j < T * ce; j += wg) {
        int tt = j / ce;
        int c2 = j - tt * ce;
        int t = t0 + tt;
        int e2 = e0 + c2;
        int sg = tt / I;
        if (t < L && e2 < ED) {
          float zz = act[zOff + (b * L + t) * zStride + e2];
          act[yOff + (b * L + t) * ED + e2] =
              lmem[oY + sg * segW + (tt - sg * I) * ce + c2] * zz / (1f + exp(-zz));
        }
      }
    }
    localBarrier();
    writeFinalState(lid, wg, ce, N, ED, b, e0, oCarry);
  }

  /**
   * Same grid and tiling as the forward; chunks last to first. Local memory: per (position,
   * channel) Δ, x, ds, a, h, s (the pre-gate output, for dz), du, dΔ and the two per-channel
   * contributions to dB and dC of the current n; per position B|C and their gradients; the
   * aggregates; the adjoint carried between chunks (N, ce); dA per thread (N, S, ce); a reduction
   * row.
   */
  final void scanBackward() {
    int lid = getLocalId();
    int wg = getLocalSize();
    int g = getGroupId();
    int ce = sCe;
    int S = sSeg;
    int I = sItems;
    int T = S * I;
    int N = sN;
    int N2 = 2 * N;
    int ED = sED;
    int L = sL;
    int nEb = (ED + ce - 1) / ce;
    int b = g / nEb;
    int eb = g - b * nEb;
    int e0 = eb * ce;
    int s = lid / ce;
    int ci = lid - s * ce;
    int e = e0 + ci;
    int segW = (I + 1) * ce;
    int chW = S * segW;
    int bcSeg = I * N2 + 1;
    int oDt = 0;
    int oX = chW;
    int oDs = 2 * chW;
    int oA = 3 * chW;
    int oH = 4 * chW;
    int oS = 5 * chW;
    int oDu = 6 * chW;
    int oDdt = 7 * chW;
    int oCb = 8 * chW;
    int oCc = 9 * chW;
    int oBc = 10 * chW;
    int oBcg = oBc + S * bcSeg;
    int oAgg = oBcg + T * N2;
    int oCarry = oAgg + 4 * S * ce;
    int oDa = oCarry + ce * N;
    int oRed = oDa + S * ce * N;
    int aggW = 2 * S * ce;
    float dDacc = 0f;

    for (int j = lid; j < ce * N; j += wg) {
      lmem[oCarry + j] = 0f;
    }
    for (int j = lid; j < S * ce * N; j += wg) {
      lmem[oDa + j] = 0f;
    }
    for (int cc = 0; cc < sChunks; cc++) {
      int c = sChunks - 1 - cc;
      int t0 = c * T;
      localBarrier();
      for (int j = lid; j < T * ce; j += wg) {
        int tt = j / ce;
        int c2 = j - tt * ce;
        int t = t0 + tt;
        int e2 = e0 + c2;
        int sg = tt / I;
        int li = sg * segW + (tt - sg * I) * ce + c2;
        float dtv = 0f;
        float xv = 0f;
        float dsv = 0f;
        float sv = 0f;
        if (t < L && e2 < ED) {
          int gi = (b * L + t) * ED + e2;
          dtv = act[dtOff + gi];
          xv = act[uOff + gi];
          float zz = act[zOff + (b * L + t) * zStride + e2];
          dsv = gact[dyOff + gi] * zz / (1f + exp(-zz));
          sv = W[dOff + e2] * xv;
        }
        lmem[oDt + li] = dtv;
        lmem[oX + li] = xv;
        lmem[oDs + li] = dsv;
        lmem[oS + li] = sv;
        lmem[oDu + li] = 0f;
        lmem[oDdt + li] = 0f;
      }
      for (int j = lid; j < T * N2; j += wg) {
        int tt = j / N2;
        int k = j - tt * N2;
        int t = t0 + tt;
        int sg = tt / I;
        float v = 0f;
        if (t < L) {
          v = act[dbcOff + (b * L + t) * sP + sR + k];
        }
        lmem[oBc + sg * bcSeg + (tt - sg * I) * N2 + k] = v;
        lmem[oBcg + j] = 0f;
      }
      localBarrier();
      for (int n = 0; n < N; n++) {
        float a2 = 0f;
        float cin = 0f;
        if (e < ED) {
          a2 = W[a2Off + n * ED + e];
          cin = act[hcOff + ((b * sChunks + c) * N + n) * ED + e];
        }
        float An = a2 * LN2;
        int bc0 = oBc + s * bcSeg + n;
        int li0 = s * segW + ci;
        float pa = 1f;
        float pu = 0f;
        for (int i = 0; i < I; i++) {
          int li = li0 + i * ce;
          float dtv = lmem[oDt + li];
          float a = exp2(dtv * a2);
          lmem[oA + li] = a;
          pu = a * pu + dtv * lmem[bc0 + i * N2] * lmem[oX + li];
          pa = a * pa;
        }
        float gin = lmem[oCarry + n * ce + ci];
        lmem[oAgg + s * ce + ci] = pa;
        lmem[oAgg + S * ce + s * ce + ci] = pu;
        localBarrier();
        int src = 0;
        for (int off = 1; off < S; off = off * 2) {
          int rs = oAgg + src * aggW;
          int wsb = oAgg + (1 - src) * aggW;
          float ai = lmem[rs + s * ce + ci];
          float ui = lmem[rs + S * ce + s * ce + ci];
          if (s >= off) {
            float ap = lmem[rs + (s - off) * ce + ci];
            float up = lmem[rs + S * ce + (s - off) * ce + ci];
            ui = ai * up + ui;
            ai = ai * ap;
          }
          lmem[wsb + s * ce + ci] = ai;
          lmem[wsb + S * ce + s * ce + ci] = ui;
          localBarrier();
          src = 1 - src;
        }
        float hin = cin;
        if (s > 0) {
          int rs = oAgg + src * aggW;
          hin = lmem[rs + (s - 1) * ce + ci] * cin + lmem[rs + S * ce + (s - 1) * ce + ci];
        }
        // the chunk's states h_t, and s_t += C·h
        float h = hin;
        for (int i = 0; i < I; i++) {
          int li = li0 + i * ce;
          h = lmem[oA + li] * h + lmem[oDt + li] * lmem[bc0 + i * N2] * lmem[oX + li];
          lmem[oH + li] = h;
          lmem[oS + li] += lmem[bc0 + N + i * N2] * h;
        }
        // reverse walk 1: this segment's pair for Ĝ_t = a_t (ds_t C_t + Ĝ_{t+1})
        float ra = 1f;
        float ru = 0f;
        for (int ii = 0; ii < I; ii++) {
          int li = li0 + (I - 1 - ii) * ce;
          float a = lmem[oA + li];
          ru = a * (ru + lmem[oDs + li] * lmem[bc0 + N + (I - 1 - ii) * N2]);
          ra = a * ra;
        }
        localBarrier();
        lmem[oAgg + s * ce + ci] = ra;
        lmem[oAgg + S * ce + s * ce + ci] = ru;
        localBarrier();
        src = 0;
        for (int off = 1; off < S; off = off * 2) {
          int rs = oAgg + src * aggW;
          int wsb = oAgg + (1 - src) * aggW;
          float ai = lmem[rs + s * ce + ci];
          float ui = lmem[rs + S * ce + s * ce + ci];
          if (s + off < S) {
            float ap = lmem[rs + (s + off) * ce + ci];
            float up = lmem[rs + S * ce + (s + off) * ce + ci];
            ui = ai * up + ui;
            ai = ai * ap;
          }
          lmem[wsb + s * ce + ci] = ai;
          lmem[wsb + S * ce + s * ce + ci] = ui;
          localBarrier();
          src = 1 - src;
        }
        float gh = gin;
        if (s < S - 1) {
          int rs = oAgg + src * aggW;
          gh = lmem[rs + (s + 1) * ce + ci] * gin + lmem[rs + S * ce + (s + 1) * ce + ci];
        }
        // reverse walk 2: G_t = ds_t C_t + Ĝ_{t+1}, and every gradient
        float dAn = 0f;
        for (int ii = 0; ii < I; ii++) {
          int i = I - 1 - ii;
          int li = li0 + i * ce;
          float a = lmem[oA + li];
          float hp = hin;
          if (i > 0) {
            hp = lmem[oH + li - ce];
          }
          float dtv = lmem[oDt + li];
          float xv = lmem[oX + li];
          float bn = lmem[bc0 + i * N2];
          float cn = lmem[bc0 + N + i * N2];
          float dsv = lmem[oDs + li];
          float gt = dsv * cn + gh;
          dAn += gt * hp * a * dtv;
          lmem[oDdt + li] += gt * (hp * a * An + bn * xv);
          lmem[oDu + li] += gt * dtv * bn;
          lmem[oCb + li] = gt * dtv * xv;
          lmem[oCc + li] = dsv * lmem[oH + li];
          gh = a * gt;
        }
        lmem[oDa + (n * S + s) * ce + ci] += dAn;
        if (s == 0) {
          lmem[oCarry + n * ce + ci] = gh;
        }
        localBarrier();
        // dB_t[n], dC_t[n]: sum the group's channels
        for (int tt = lid; tt < T; tt += wg) {
          int sg = tt / I;
          int lb = sg * segW + (tt - sg * I) * ce;
          float sb = 0f;
          float sc = 0f;
          for (int c2 = 0; c2 < ce; c2++) {
            sb += lmem[oCb + lb + c2];
            sc += lmem[oCc + lb + c2];
          }
          lmem[oBcg + tt * N2 + n] += sb;
          lmem[oBcg + tt * N2 + N + n] += sc;
        }
        localBarrier();
      }
      for (int j = lid; j < T * ce; j += wg) {
        int tt = j / ce;
        int c2 = j - tt * ce;
        int t = t0 + tt;
        int e2 = e0 + c2;
        int sg = tt / I;
        int li = sg * segW + (tt - sg * I) * ce + c2;
        if (t < L && e2 < ED) {
          int gi = (b * L + t) * ED + e2;
          float zz = act[zOff + (b * L + t) * zStride + e2];
          float sig = 1f / (1f + exp(-zz));
          float dyv = gact[dyOff + gi];
          float dsv = lmem[oDs + li];
          float xv = lmem[oX + li];
          gact[dzOff + (b * L + t) * zStride + e2] =
              dyv * lmem[oS + li] * sig * (1f + zz * (1f - sig));
          gact[duOff + gi] = lmem[oDu + li] + dsv * W[dOff + e2];
          gact[ddtOff + gi] = lmem[oDdt + li];
          dDacc += dsv * xv;
        }
      }
      for (int j = lid; j < T * N2; j += wg) {
        int tt = j / N2;
        int t = t0 + tt;
        if (t < L) {
          part[pBcOff + ((eb * sB + b) * L + t) * N2 + j - tt * N2] = lmem[oBcg + j];
        }
      }
    }
    localBarrier();
    lmem[oRed + lid] = dDacc;
    localBarrier();
    for (int j = lid; j < ce * N; j += wg) {
      int n = j / ce;
      int c2 = j - n * ce;
      int e2 = e0 + c2;
      float sum = 0f;
      for (int sg = 0; sg < S; sg++) {
        sum += lmem[oDa + (n * S + sg) * ce + c2];
      }
      if (e2 < ED) {
        part[pAOff + (b * N + n) * ED + e2] = sum;
      }
    }
    if (lid < ce && e < ED) {
      float sum = 0f;
      for (int sg = 0; sg < S; sg++) {
        sum += lmem[oRed + sg * ce + lid];
      }
      part[pDOff + b * ED + e] = sum;
    }
  }
}
