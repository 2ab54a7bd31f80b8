package org.mambaspark.kernel;

/**
 * The selective scan (S6) as a chunked parallel prefix sum on an OpenCL device: the forward with
 * the D skip and the SiLU(z) gate fused, and the backward (the reverse-time adjoint, itself a
 * reverse scan), the GPU versions of {@code ops.SelectiveScan#scanForward} and {@code
 * #scanBackward} (mamba_ssm's {@code selective_scan_fwd/bwd} kernels are the model).
 *
 * <p>Why one class with an {@code op} field: Aparapi gives each Kernel instance its own device
 * buffers and runs only {@code run()} (named entry points do not work), so everything that must
 * stay resident across launches lives in one instance whose {@code run()} dispatches on {@link
 * #op}. {@link MambaKernel} extends this class with the rest of the layer; the memory is {@link
 * KernelMemory}'s.
 *
 * <p>Tiling. A work-group owns {@code ce} consecutive channels e of one sequence b (not one channel
 * as in the CUDA kernel: the engine's layout is (B, L, ED), channel-minor, so a group of 8
 * neighbouring channels reads whole 32-byte sectors) and walks the sequence in chunks of T = S·I
 * positions. Thread (s, ci) owns channel ci and the I consecutive positions of segment s. Per chunk
 * and per state n: each thread composes its I pairs (a_t, u_t) = (exp2(Δ_t·A[n]·log2 e), Δ_t B_t[n]
 * x_t) sequentially, the S segment aggregates are scanned across threads in local memory
 * (Hillis-Steele, ping-pong) with
 *
 * <pre>
 *   (a1, u1) ∘ (a2, u2) = (a2·a1, a2·u1 + u2)        identity (1, 0)
 * </pre>
 *
 * the running state from the previous chunk is applied, and each thread re-walks its positions from
 * its segment's entering state, adding C_t[n]·h_t into y in local memory. The a_t of the first walk
 * are kept in local memory, so each exponential is computed once. Only chunk-boundary states are
 * written (hChunks (B, chunks, N, ED), the layout of {@code SelectiveScan.saveChunkStates} with T =
 * chunk), and the final state h_L.
 *
 * <p>The backward processes chunks last to first: it recomputes the chunk's states from its saved
 * boundary (same forward scan), then runs the adjoint Ĝ_t = a_t (g_t + Ĝ_{t+1}), g_t = ds_t C_t[n],
 * as a reverse scan with the same operator, accumulating du, dΔ (local memory, per position), dA
 * and dD (per thread, then per group), and dB, dC (summed over the group's channels in local
 * memory, then over channel groups by {@link #OP_SCAN_BWD_REDUCE}; no atomics, deterministic).
 *
 * <p>Aparapi's subset of Java: primitives and 1-D primitive arrays, no {@code break}/{@code
 * continue}, no allocation; every thread of a group reaches every {@code localBarrier()}.
 */
public class ScanKernel extends KernelMemory {
  static final int OP_NONE = 0;
  static final int OP_SCAN_BWD_REDUCE = 3;
  static final int OP_SCAN_FWD4 = 7;
  static final int OP_SCAN_BWD4 = 8;
  static final int OP_SCAN_BWD_CARRY = 9;

  /** log2(e): exp(x) = exp2(x·log2 e); A is stored pre-multiplied. */
  static final float LOG2E = 1.442695f;

  static final float LN2 = 0.6931472f;

  // ---- scan shape and tiling
  int sB;
  int sL;
  int sED;
  int sN;
  int sR; //      B starts at column R of a dbc row, C at R+N
  int sP; //      dbc row stride (R + 2N in the model)
  int sCe; //     channels per work-group
  int sSeg; //    S: segments (threads per channel) per chunk
  int sItems; //  I: positions per segment; chunk T = S·I
  int sChunks; // ceil(L / T)
  int sSave; //   1: write hChunks (chunk-boundary states)
  int sHasState; // 1: h_0 from state, else zeros
  int sWriteState; // 1: write h_L to state

  // ---- scan operands: offsets into act (forward inputs), W, state
  int uOff; //    (B, L, ED) the conv output x, "u"
  int dtOff; //   (B, L, ED) Δ after softplus
  int dbcOff; //  (B, L, P)  x_proj output: B at R, C at R+N
  int zOff; //    z at act[zOff + (b·L + t)·zStride + e]
  int zStride;
  int yOff; //    (B, L, ED) output
  int hcOff; //   (B, chunks, N, ED) chunk-boundary states (in act)
  int a2Off; //   W: (N, ED) A·log2(e), A = -exp(A_log) transposed
  int dOff; //    W: (ED) D skip
  int hOff; //    state: (B, N, ED) h

  // ---- scan backward: offsets into gact, part, and where dA, dD go
  int dyOff; //   gact (B, L, ED) gradient of the gated output
  int duOff; //   gact (B, L, ED) =  (the backward writes du, dΔ, dz: the model's first writer)
  int ddtOff; //  gact (B, L, ED) =
  int ddbcOff; // gact (B, L, P) += at the B and C columns
  int dzOff; //   gact: dz at gact[dzOff + (b·L + t)·zStride + e] =
  int pBcOff; //  part (ED/ce, B, L, 2N) per channel-group dB | dC
  int pAOff; //   part (B, parts, N, ED) per sequence and part dA
  int pDOff; //   part (B, parts, ED) per sequence and part dD
  int sParts = 1; // parts a row's chunks are split into across work-groups (1: one group a row)
  int pWqOff; //  part (B, parts, N, ED) the adjoint each part passes leftwards when none enters it
  int pWsOff; //  part (B, parts, ED) each part's ΣΔ: its decay is exp2(A·log2 e·ΣΔ)

  /**
   * 0: dA (N, ED) and dD (ED) += into gact at dAOff, dDOff; 1: += into G as d A_log (ED, N), dD.
   */
  int sGradMode;

  int dAOff;
  int dDOff;

  @Override
  public void run() {
    if (op == OP_SCAN_BWD_REDUCE) {
      scanBackwardReduce();
    } else if (op == OP_SCAN_FWD4) {
      scanForward4();
    } else if (op == OP_SCAN_BWD4) {
      scanBackward4();
    } else if (op == OP_SCAN_BWD_CARRY) {
      scanBackwardCarry();
    }
  }

  /** n-blocks of the backward's dB|dC reduction (states per barrier pair). */
  static final int BWD_NB = 4;

  /** Local floats version 4 of the forward needs (I = 4). */
  static int scanForward4Local(int ce, int S, int N) {
    return S * (8 * N + 1) + 2 * N * ce + S * ce + N * (S + 1) * ce;
  }

  /** Local floats version 4 of the backward needs (I = 4). */
  static int scanBackward4Local(int ce, int S, int N) {
    int aggRow = (S + 1) * ce;
    return S * (8 * N + 1) + 3 * N * ce + S * ce + 3 * N * aggRow + BWD_NB * 2 * 4 * S * (ce + 1);
  }

  /**
   * Version 4 of the forward (I = 4): the N scans of a chunk share their barriers. Per chunk: (1)
   * each thread composes its segment's pair (a, u) for every n (u into local memory; the product a
   * = Π a_t = exp2(A[n]·log2 e·ΣΔ_t) needs only the segment's ΣΔ, one float a thread); (2) one
   * thread per (n, channel) walks the S segment pairs in order from the running state, leaving each
   * segment's entering state in place (the scan across segments, S steps, no barrier inside); (3)
   * each thread re-walks its positions from its entering states, recomputing a_t, and accumulates y
   * in registers over n. Three barriers a chunk, where one scan per state needs N·(log2 S + 2)
   * (1.50 ms against 0.80 ms at B=8 L=2048 on the H200): on a GPU the barriers, not the arithmetic,
   * were the cost. Version 3 kept the products per state in local memory, divided to stage B|C and
   * loaded its own inputs after the staging; removing those took that size to 0.61 ms.
   */
  final void scanForward4() {
    int lid = getLocalId();
    int wg = getLocalSize();
    int g = getGroupId();
    int ce = sCe;
    int S = sSeg;
    int T = S * 4;
    int N = sN;
    int N2 = 2 * N;
    int ED = sED;
    int L = sL;
    int nEb = (ED + ce - 1) / ce;
    int b = g / nEb;
    int e0 = (g - b * nEb) * ce;
    int s = lid / ce;
    int ci = lid - s * ce;
    int e = e0 + ci;
    int bcSeg = 4 * N2 + 1;
    int aggRow = (S + 1) * ce;
    int oBc = 0;
    int oA2 = S * bcSeg;
    int oCarry = oA2 + N * ce;
    int oDs = oCarry + N * ce;
    int oAggU = oDs + S * ce;
    float de = 0f;
    if (e < ED) {
      de = W[dOff + e];
    }
    for (int j = lid; j < ce * N; j += wg) {
      int n = j / ce;
      int e2 = e0 + j - n * ce;
      float h0 = 0f;
      float a2 = 0f;
      if (e2 < ED) {
        a2 = W[a2Off + n * ED + e2];
        if (sHasState == 1) {
          h0 = state[hOff + (b * N + n) * ED + e2];
        }
      }
      lmem[oA2 + j] = a2;
      lmem[oCarry + j] = h0;
    }
    for (int c = 0; c < sChunks; c++) {
      int t0 = c * T + s * 4;
      float dt0 = 0f;
      float dt1 = 0f;
      float dt2 = 0f;
      float dt3 = 0f;
      float x0 = 0f;
      float x1 = 0f;
      float x2 = 0f;
      float x3 = 0f;
      float z0 = 0f;
      float z1 = 0f;
      float z2 = 0f;
      float z3 = 0f;
      int gi = (b * L + t0) * ED + e;
      int zi = (b * L + t0) * zStride + e;
      if (e < ED) {
        if (t0 < L) {
          dt0 = act[dtOff + gi];
          x0 = act[uOff + gi];
          z0 = act[zOff + zi];
        }
        if (t0 + 1 < L) {
          dt1 = act[dtOff + gi + ED];
          x1 = act[uOff + gi + ED];
          z1 = act[zOff + zi + zStride];
        }
        if (t0 + 2 < L) {
          dt2 = act[dtOff + gi + 2 * ED];
          x2 = act[uOff + gi + 2 * ED];
          z2 = act[zOff + zi + 2 * zStride];
        }
        if (t0 + 3 < L) {
          dt3 = act[dtOff + gi + 3 * ED];
          x3 = act[uOff + gi + 3 * ED];
          z3 = act[zOff + zi + 3 * zStride];
        }
      }
      localBarrier();
      stageBc4(lid, wg, N2, T, L, b, c, oBc, bcSeg);
      int ag = s * ce + ci;
      lmem[oDs + ag] = dt0 + dt1 + dt2 + dt3;
      float dx0 = dt0 * x0;
      float dx1 = dt1 * x1;
      float dx2 = dt2 * x2;
      float dx3 = dt3 * x3;
      localBarrier();
      int bc0 = oBc + s * bcSeg;
      for (int n = 0; n < N; n++) {
        float a2 = lmem[oA2 + n * ce + ci];
        int bc = bc0 + n;
        float a1 = exp2(dt1 * a2);
        float a2v = exp2(dt2 * a2);
        float a3 = exp2(dt3 * a2);
        float u0 = dx0 * lmem[bc];
        float u1 = dx1 * lmem[bc + N2];
        float u2 = dx2 * lmem[bc + 2 * N2];
        float u3 = dx3 * lmem[bc + 3 * N2];
        lmem[oAggU + n * aggRow + ag] = ((u0 * a1 + u1) * a2v + u2) * a3 + u3;
      }
      localBarrier();
      for (int j = lid; j < ce * N; j += wg) {
        int n = j / ce;
        int c2 = j - n * ce;
        float an = lmem[oA2 + j];
        float h = lmem[oCarry + j];
        if (sSave == 1 && e0 + c2 < ED) {
          act[hcOff + ((b * sChunks + c) * N + n) * ED + e0 + c2] = h;
        }
        int r = oAggU + n * aggRow + c2;
        for (int sg = 0; sg < S; sg++) {
          float pu = lmem[r + sg * ce];
          lmem[r + sg * ce] = h;
          h = exp2(an * lmem[oDs + sg * ce + c2]) * h + pu;
        }
        lmem[oCarry + j] = h;
      }
      localBarrier();
      float y0 = de * x0;
      float y1 = de * x1;
      float y2 = de * x2;
      float y3 = de * x3;
      for (int n = 0; n < N; n++) {
        float a2 = lmem[oA2 + n * ce + ci];
        int bc = bc0 + n;
        float h = lmem[oAggU + n * aggRow + ag];
        h = exp2(dt0 * a2) * h + dx0 * lmem[bc];
        y0 += lmem[bc + N] * h;
        h = exp2(dt1 * a2) * h + dx1 * lmem[bc + N2];
        y1 += lmem[bc + N + N2] * h;
        h = exp2(dt2 * a2) * h + dx2 * lmem[bc + 2 * N2];
        y2 += lmem[bc + N + 2 * N2] * h;
        h = exp2(dt3 * a2) * h + dx3 * lmem[bc + 3 * N2];
        y3 += lmem[bc + N + 3 * N2] * h;
      }
      if (e < ED) {
        if (t0 < L) {
          act[yOff + gi] = y0 * z0 / (1f + exp(-z0));
        }
        if (t0 + 1 < L) {
          act[yOff + gi + ED] = y1 * z1 / (1f + exp(-z1));
        }
        if (t0 + 2 < L) {
          act[yOff + gi + 2 * ED] = y2 * z2 / (1f + exp(-z2));
        }
        if (t0 + 3 < L) {
          act[yOff + gi + 3 * ED] = y3 * z3 / (1f + exp(-z3));
        }
      }
    }
    localBarrier();
    writeFinalState(lid, wg, ce, N, ED, b, e0, oCarry);
  }

  /**
   * Version 4 of the backward (I = 4), the forward's barrier-sharing applied to both directions.
   * Per chunk, last to first: (0) B|C and the chunk's saved states are staged into local memory;
   * (1) each thread composes, for every n, its segment's forward pair (a, u) and its adjoint pair:
   * with w_t = a_t·(ds_t·C_t + w_{t+1}) the adjoint passed leftwards, w leaving a segment is
   * a·w_entering + Q; (2) one thread per (n, channel) walks the segments forwards from the saved
   * chunk state (each segment's entering h) and backwards from the adjoint carried in from the next
   * chunk (each segment's entering w); (3) each thread recomputes its states, walks them in
   * reverse, and accumulates du, dΔ and the pre-gate y in registers, dA in its own local slot, and
   * dB, dC (sums over channels) through a local reduction for every {@link #BWD_NB} states. du, dΔ
   * and dz are written, not added (the model zeroes nothing for them); dB|dC, dA and dD go to
   * partials summed by {@link #scanBackwardReduce}.
   */
  final void scanBackward4() {
    int lid = getLocalId();
    int wg = getLocalSize();
    int g = getGroupId();
    int ce = sCe;
    int S = sSeg;
    int T = S * 4;
    int N = sN;
    int N2 = 2 * N;
    int ED = sED;
    int L = sL;
    int nEb = (ED + ce - 1) / ce;
    int rowPart = g / nEb;
    int eb = g - rowPart * nEb;
    int b = rowPart / sParts;
    int p = rowPart - b * sParts;
    // every part walks partChunks chunks (a trip count the same for every group: PoCL cannot build
    // barriers inside a loop whose count depends on the group); the last part's first ones lie past
    // the row's end, where every position is padding
    int partChunks = (sChunks + sParts - 1) / sParts;
    int cTop = (p + 1) * partChunks - 1;
    int e0 = eb * ce;
    int s = lid / ce;
    int ci = lid - s * ce;
    int e = e0 + ci;
    int bcSeg = 4 * N2 + 1;
    int aggRow = (S + 1) * ce;
    int redRow = ce + 1;
    int oBc = 0;
    int oA2 = S * bcSeg;
    int oWc = oA2 + N * ce;
    int oDs = oWc + N * ce;
    int oHc = oDs + S * ce;
    int oAggU = oHc + N * ce;
    int oAggQ = oAggU + N * aggRow;
    int oDa = oAggQ + N * aggRow;
    int oRed = oDa + N * aggRow;
    int ag = s * ce + ci;
    float de = 0f;
    if (e < ED) {
      de = W[dOff + e];
    }
    float dDacc = 0f;
    for (int j = lid; j < ce * N; j += wg) {
      int n = j / ce;
      int e2 = e0 + j - n * ce;
      float a2 = 0f;
      float w = 0f;
      if (e2 < ED) {
        a2 = W[a2Off + n * ED + e2];
        // the adjoint entering this part from the right: the later parts' carries, folded
        for (int q = sParts - 1; q > p; q--) {
          int r = b * sParts + q;
          w = exp2(a2 * part[pWsOff + r * ED + e2]) * w + part[pWqOff + (r * N + n) * ED + e2];
        }
      }
      lmem[oA2 + j] = a2;
      lmem[oWc + j] = w;
    }
    for (int j = lid; j < N * aggRow; j += wg) {
      lmem[oDa + j] = 0f;
    }
    for (int cc = 0; cc < partChunks; cc++) {
      int c = cTop - cc;
      int t0 = c * T + s * 4;
      float dt0 = 0f;
      float dt1 = 0f;
      float dt2 = 0f;
      float dt3 = 0f;
      float x0 = 0f;
      float x1 = 0f;
      float x2 = 0f;
      float x3 = 0f;
      float ds0 = 0f;
      float ds1 = 0f;
      float ds2 = 0f;
      float ds3 = 0f;
      float gz0 = 0f;
      float gz1 = 0f;
      float gz2 = 0f;
      float gz3 = 0f;
      int gi = (b * L + t0) * ED + e;
      int zi = (b * L + t0) * zStride + e;
      if (e < ED) {
        if (t0 < L) {
          dt0 = act[dtOff + gi];
          x0 = act[uOff + gi];
          float zz = act[zOff + zi];
          float sig = 1f / (1f + exp(-zz));
          float dyv = gact[dyOff + gi];
          ds0 = dyv * zz * sig;
          gz0 = dyv * sig * (1f + zz * (1f - sig));
        }
        if (t0 + 1 < L) {
          dt1 = act[dtOff + gi + ED];
          x1 = act[uOff + gi + ED];
          float zz = act[zOff + zi + zStride];
          float sig = 1f / (1f + exp(-zz));
          float dyv = gact[dyOff + gi + ED];
          ds1 = dyv * zz * sig;
          gz1 = dyv * sig * (1f + zz * (1f - sig));
        }
        if (t0 + 2 < L) {
          dt2 = act[dtOff + gi + 2 * ED];
          x2 = act[uOff + gi + 2 * ED];
          float zz = act[zOff + zi + 2 * zStride];
          float sig = 1f / (1f + exp(-zz));
          float dyv = gact[dyOff + gi + 2 * ED];
          ds2 = dyv * zz * sig;
          gz2 = dyv * sig * (1f + zz * (1f - sig));
        }
        if (t0 + 3 < L) {
          dt3 = act[dtOff + gi + 3 * ED];
          x3 = act[uOff + gi + 3 * ED];
          float zz = act[zOff + zi + 3 * zStride];
          float sig = 1f / (1f + exp(-zz));
          float dyv = gact[dyOff + gi + 3 * ED];
          ds3 = dyv * zz * sig;
          gz3 = dyv * sig * (1f + zz * (1f - sig));
        }
      }
      localBarrier();
      stageBc4(lid, wg, N2, T, L, b, c, oBc, bcSeg);
      for (int j = lid; j < ce * N; j += wg) {
        int n = j / ce;
        int c2 = j - n * ce;
        float h = 0f;
        if (e0 + c2 < ED && c < sChunks) {
          h = act[hcOff + ((b * sChunks + c) * N + n) * ED + e0 + c2];
        }
        lmem[oHc + j] = h;
      }
      lmem[oDs + ag] = dt0 + dt1 + dt2 + dt3;
      float dx0 = dt0 * x0;
      float dx1 = dt1 * x1;
      float dx2 = dt2 * x2;
      float dx3 = dt3 * x3;
      localBarrier();
      int bc0 = oBc + s * bcSeg;
      // (1) the segment's forward pair (A, U) and adjoint pair (A, Q) for every n
      for (int n = 0; n < N; n++) {
        float a2 = lmem[oA2 + n * ce + ci];
        int bc = bc0 + n;
        float a0 = exp2(dt0 * a2);
        float a1 = exp2(dt1 * a2);
        float a2v = exp2(dt2 * a2);
        float a3 = exp2(dt3 * a2);
        float u0 = dx0 * lmem[bc];
        float u1 = dx1 * lmem[bc + N2];
        float u2 = dx2 * lmem[bc + 2 * N2];
        float u3 = dx3 * lmem[bc + 3 * N2];
        float g0 = ds0 * lmem[bc + N];
        float g1 = ds1 * lmem[bc + N + N2];
        float g2 = ds2 * lmem[bc + N + 2 * N2];
        float g3 = ds3 * lmem[bc + N + 3 * N2];
        lmem[oAggU + n * aggRow + ag] = ((u0 * a1 + u1) * a2v + u2) * a3 + u3;
        lmem[oAggQ + n * aggRow + ag] = a0 * (g0 + a1 * (g1 + a2v * (g2 + a3 * g3)));
      }
      localBarrier();
      // (2) entering h (forwards from the saved chunk state) and w (backwards from the carry)
      for (int j = lid; j < ce * N; j += wg) {
        int n = j / ce;
        int c2 = j - n * ce;
        float an = lmem[oA2 + j];
        float h = lmem[oHc + j];
        int r = n * aggRow + c2;
        for (int sg = 0; sg < S; sg++) {
          float pa = exp2(an * lmem[oDs + sg * ce + c2]);
          float pu = lmem[oAggU + r + sg * ce];
          lmem[oAggU + r + sg * ce] = h;
          h = pa * h + pu;
        }
        float w = lmem[oWc + j];
        for (int k = 0; k < S; k++) {
          int sg = S - 1 - k;
          float pa = exp2(an * lmem[oDs + sg * ce + c2]);
          float q = lmem[oAggQ + r + sg * ce];
          lmem[oAggQ + r + sg * ce] = w;
          w = pa * w + q;
        }
        lmem[oWc + j] = w;
      }
      localBarrier();
      // (3) the gradients, NB states at a time (dB, dC need a sum over the group's channels)
      float y0 = de * x0;
      float y1 = de * x1;
      float y2 = de * x2;
      float y3 = de * x3;
      float du0 = de * ds0;
      float du1 = de * ds1;
      float du2 = de * ds2;
      float du3 = de * ds3;
      float dd0 = 0f;
      float dd1 = 0f;
      float dd2 = 0f;
      float dd3 = 0f;
      for (int nb0 = 0; nb0 < N; nb0 += BWD_NB) {
        for (int nb = 0; nb < BWD_NB; nb++) {
          int n = nb0 + nb;
          if (n < N) {
            float a2 = lmem[oA2 + n * ce + ci];
            float An = a2 * LN2;
            int bc = bc0 + n;
            float b0 = lmem[bc];
            float b1 = lmem[bc + N2];
            float b2 = lmem[bc + 2 * N2];
            float b3 = lmem[bc + 3 * N2];
            float c0 = lmem[bc + N];
            float c1 = lmem[bc + N + N2];
            float c2 = lmem[bc + N + 2 * N2];
            float c3 = lmem[bc + N + 3 * N2];
            float a0 = exp2(dt0 * a2);
            float a1 = exp2(dt1 * a2);
            float a2v = exp2(dt2 * a2);
            float a3 = exp2(dt3 * a2);
            float hp = lmem[oAggU + n * aggRow + ag];
            float h0 = a0 * hp + dx0 * b0;
            float h1 = a1 * h0 + dx1 * b1;
            float h2 = a2v * h1 + dx2 * b2;
            float h3 = a3 * h2 + dx3 * b3;
            y0 += c0 * h0;
            y1 += c1 * h1;
            y2 += c2 * h2;
            y3 += c3 * h3;
            float w = lmem[oAggQ + n * aggRow + ag];
            float g3 = ds3 * c3 + w;
            w = a3 * g3;
            float g2 = ds2 * c2 + w;
            w = a2v * g2;
            float g1 = ds1 * c1 + w;
            w = a1 * g1;
            float g0 = ds0 * c0 + w;
            float ah0 = a0 * hp;
            float ah1 = a1 * h0;
            float ah2 = a2v * h1;
            float ah3 = a3 * h2;
            lmem[oDa + n * aggRow + ag] +=
                g0 * dt0 * ah0 + g1 * dt1 * ah1 + g2 * dt2 * ah2 + g3 * dt3 * ah3;
            dd0 += g0 * (ah0 * An + b0 * x0);
            dd1 += g1 * (ah1 * An + b1 * x1);
            dd2 += g2 * (ah2 * An + b2 * x2);
            dd3 += g3 * (ah3 * An + b3 * x3);
            du0 += g0 * dt0 * b0;
            du1 += g1 * dt1 * b1;
            du2 += g2 * dt2 * b2;
            du3 += g3 * dt3 * b3;
            int rb = oRed + ((nb * 2) * T + s) * redRow + ci;
            int rc = oRed + ((nb * 2 + 1) * T + s) * redRow + ci;
            int step = S * redRow; // rows ordered (i, s): a warp's lanes write distinct banks
            lmem[rb] = g0 * dx0;
            lmem[rb + step] = g1 * dx1;
            lmem[rb + 2 * step] = g2 * dx2;
            lmem[rb + 3 * step] = g3 * dx3;
            lmem[rc] = ds0 * h0;
            lmem[rc + step] = ds1 * h1;
            lmem[rc + 2 * step] = ds2 * h2;
            lmem[rc + 3 * step] = ds3 * h3;
          }
        }
        localBarrier();
        for (int r = lid; r < BWD_NB * 2 * T; r += wg) {
          int nbw = r / T;
          int rem = r - nbw * T;
          int i = rem / S;
          int sg = rem - i * S;
          int nb = nbw / 2;
          int n = nb0 + nb;
          int t = c * T + sg * 4 + i;
          if (n < N && t < L) {
            // four partial sums: the adds of one long chain would each wait for the last
            int q = oRed + r * redRow;
            float s0 = 0f;
            float s1 = 0f;
            float s2 = 0f;
            float s3 = 0f;
            int c2 = 0;
            while (c2 + 3 < ce) {
              s0 += lmem[q + c2];
              s1 += lmem[q + c2 + 1];
              s2 += lmem[q + c2 + 2];
              s3 += lmem[q + c2 + 3];
              c2 += 4;
            }
            while (c2 < ce) {
              s0 += lmem[q + c2];
              c2++;
            }
            part[pBcOff + ((eb * sB + b) * L + t) * N2 + (nbw - nb * 2) * N + n] =
                (s0 + s1) + (s2 + s3);
          }
        }
        localBarrier();
      }
      dDacc += ds0 * x0 + ds1 * x1 + ds2 * x2 + ds3 * x3;
      if (e < ED) {
        if (t0 < L) {
          gact[dzOff + zi] = gz0 * y0;
          gact[duOff + gi] = du0;
          gact[ddtOff + gi] = dd0;
        }
        if (t0 + 1 < L) {
          gact[dzOff + zi + zStride] = gz1 * y1;
          gact[duOff + gi + ED] = du1;
          gact[ddtOff + gi + ED] = dd1;
        }
        if (t0 + 2 < L) {
          gact[dzOff + zi + 2 * zStride] = gz2 * y2;
          gact[duOff + gi + 2 * ED] = du2;
          gact[ddtOff + gi + 2 * ED] = dd2;
        }
        if (t0 + 3 < L) {
          gact[dzOff + zi + 3 * zStride] = gz3 * y3;
          gact[duOff + gi + 3 * ED] = du3;
          gact[ddtOff + gi + 3 * ED] = dd3;
        }
      }
    }
    localBarrier();
    lmem[oAggU + lid] = dDacc;
    localBarrier();
    for (int j = lid; j < ce * N; j += wg) {
      int n = j / ce;
      int c2 = j - n * ce;
      int e2 = e0 + c2;
      float sum = 0f;
      for (int sg = 0; sg < S; sg++) {
        sum += lmem[oDa + n * aggRow + sg * ce + c2];
      }
      if (e2 < ED) {
        part[pAOff + ((b * sParts + p) * N + n) * ED + e2] = sum;
      }
    }
    if (lid < ce && e < ED) {
      float sum = 0f;
      for (int sg = 0; sg < S; sg++) {
        sum += lmem[oAggU + sg * ce + lid];
      }
      part[pDOff + (b * sParts + p) * ED + e] = sum;
    }
  }

  /**
   * The first pass of a backward whose rows are split into {@link #sParts} parts of chunks, one
   * work-group per (sequence, part, channel block) of every part but the first: the adjoint w the
   * part passes leftwards when none enters it from the right, Q (steps (1) and (2) of {@link
   * #scanBackward4}, adjoint half only: Δ, ds and C), and its ΣΔ per channel. The adjoint leaving a
   * part is linear in the one entering it, exp2(A·log2 e·ΣΔ)·w + Q, so {@link #scanBackward4}'s
   * group for part p folds the later parts' pairs into the w that enters it, and the row's chunks
   * run on P times as many groups. Same tiling and local memory as the backward.
   */
  final void scanBackwardCarry() {
    int lid = getLocalId();
    int wg = getLocalSize();
    int g = getGroupId();
    int ce = sCe;
    int S = sSeg;
    int T = S * 4;
    int N = sN;
    int N2 = 2 * N;
    int ED = sED;
    int L = sL;
    int nEb = (ED + ce - 1) / ce;
    int rowPart = g / nEb;
    int eb = g - rowPart * nEb;
    int b = rowPart / (sParts - 1);
    int p = 1 + rowPart - b * (sParts - 1);
    // every part walks partChunks chunks (a trip count the same for every group: PoCL cannot build
    // barriers inside a loop whose count depends on the group); the last part's first ones lie past
    // the row's end, where every position is padding
    int partChunks = (sChunks + sParts - 1) / sParts;
    int cTop = (p + 1) * partChunks - 1;
    int e0 = eb * ce;
    int s = lid / ce;
    int ci = lid - s * ce;
    int e = e0 + ci;
    int bcSeg = 4 * N2 + 1;
    int aggRow = (S + 1) * ce;
    int oBc = 0;
    int oA2 = S * bcSeg;
    int oWc = oA2 + N * ce;
    int oDs = oWc + N * ce;
    int oHc = oDs + S * ce;
    int oAggU = oHc + N * ce;
    int oAggQ = oAggU + N * aggRow;
    int ag = s * ce + ci;
    for (int j = lid; j < ce * N; j += wg) {
      int n = j / ce;
      int e2 = e0 + j - n * ce;
      float a2 = 0f;
      if (e2 < ED) {
        a2 = W[a2Off + n * ED + e2];
      }
      lmem[oA2 + j] = a2;
      lmem[oWc + j] = 0f;
    }
    float dtSum = 0f;
    for (int cc = 0; cc < partChunks; cc++) {
      int c = cTop - cc;
      int t0 = c * T + s * 4;
      float dt0 = 0f;
      float dt1 = 0f;
      float dt2 = 0f;
      float dt3 = 0f;
      float ds0 = 0f;
      float ds1 = 0f;
      float ds2 = 0f;
      float ds3 = 0f;
      int gi = (b * L + t0) * ED + e;
      int zi = (b * L + t0) * zStride + e;
      if (e < ED) {
        if (t0 < L) {
          dt0 = act[dtOff + gi];
          float zz = act[zOff + zi];
          float sig = 1f / (1f + exp(-zz));
          ds0 = gact[dyOff + gi] * zz * sig;
        }
        if (t0 + 1 < L) {
          dt1 = act[dtOff + gi + ED];
          float zz = act[zOff + zi + zStride];
          float sig = 1f / (1f + exp(-zz));
          ds1 = gact[dyOff + gi + ED] * zz * sig;
        }
        if (t0 + 2 < L) {
          dt2 = act[dtOff + gi + 2 * ED];
          float zz = act[zOff + zi + 2 * zStride];
          float sig = 1f / (1f + exp(-zz));
          ds2 = gact[dyOff + gi + 2 * ED] * zz * sig;
        }
        if (t0 + 3 < L) {
          dt3 = act[dtOff + gi + 3 * ED];
          float zz = act[zOff + zi + 3 * zStride];
          float sig = 1f / (1f + exp(-zz));
          ds3 = gact[dyOff + gi + 3 * ED] * zz * sig;
        }
      }
      localBarrier();
      stageBc4(lid, wg, N2, T, L, b, c, oBc, bcSeg);
      lmem[oDs + ag] = dt0 + dt1 + dt2 + dt3;
      dtSum += dt0 + dt1 + dt2 + dt3;
      localBarrier();
      int bc0 = oBc + s * bcSeg;
      for (int n = 0; n < N; n++) {
        float a2 = lmem[oA2 + n * ce + ci];
        int bc = bc0 + N + n;
        float a0 = exp2(dt0 * a2);
        float a1 = exp2(dt1 * a2);
        float a2v = exp2(dt2 * a2);
        float a3 = exp2(dt3 * a2);
        float g0 = ds0 * lmem[bc];
        float g1 = ds1 * lmem[bc + N2];
        float g2 = ds2 * lmem[bc + 2 * N2];
        float g3 = ds3 * lmem[bc + 3 * N2];
        lmem[oAggQ + n * aggRow + ag] = a0 * (g0 + a1 * (g1 + a2v * (g2 + a3 * g3)));
      }
      localBarrier();
      for (int j = lid; j < ce * N; j += wg) {
        int n = j / ce;
        int c2 = j - n * ce;
        float an = lmem[oA2 + j];
        int r = n * aggRow + c2;
        float w = lmem[oWc + j];
        for (int k = 0; k < S; k++) {
          int sg = S - 1 - k;
          w = exp2(an * lmem[oDs + sg * ce + c2]) * w + lmem[oAggQ + r + sg * ce];
        }
        lmem[oWc + j] = w;
      }
    }
    localBarrier();
    lmem[oAggU + lid] = dtSum;
    localBarrier();
    int row = b * sParts + p;
    for (int j = lid; j < ce * N; j += wg) {
      int n = j / ce;
      int e2 = e0 + j - n * ce;
      if (e2 < ED) {
        part[pWqOff + (row * N + n) * ED + e2] = lmem[oWc + j];
      }
    }
    if (lid < ce && e < ED) {
      float sum = 0f;
      for (int sg = 0; sg < S; sg++) {
        sum += lmem[oAggU + sg * ce + lid];
      }
      part[pWsOff + row * ED + e] = sum;
    }
  }

  /** h_L, the running state in local memory at oCarry (N, ce), to state when asked. */
  final void writeFinalState(int lid, int wg, int ce, int N, int ED, int b, int e0, int oCarry) {
    if (sWriteState == 1) {
      for (int j = lid; j < ce * N; j += wg) {
        int n = j / ce;
        int e2 = e0 + j - n * ce;
        if (e2 < ED) {
          state[hOff + (b * N + n) * ED + e2] = lmem[oCarry + j];
        }
      }
    }
  }

  /**
   * Version 4: chunk c's B|C (T positions × 2N columns) into local memory, segments of four
   * positions padded to bcSeg. Each thread walks its (position, column) pairs incrementally instead
   * of dividing per element (one of the changes that together made version 4; not timed alone).
   */
  private void stageBc4(int lid, int wg, int N2, int T, int L, int b, int c, int oBc, int bcSeg) {
    int dT = wg / N2;
    int dK = wg - dT * N2;
    int kc = lid % N2;
    int tc = lid / N2;
    for (int j = lid; j < T * N2; j += wg) {
      float v = 0f;
      if (c * T + tc < L) {
        v = act[dbcOff + (b * L + c * T + tc) * sP + sR + kc];
      }
      lmem[oBc + (tc >> 2) * bcSeg + (tc & 3) * N2 + kc] = v;
      kc += dK;
      tc += dT;
      if (kc >= N2) {
        kc -= N2;
        tc++;
      }
    }
  }

  /**
   * Sums the backward's partials, one thread per output: dB|dC over channel groups into ddbc, dA
   * and dD over sequences and parts (in a fixed order: deterministic).
   */
  final void scanBackwardReduce() {
    int gid = getGlobalId();
    int N = sN;
    int N2 = 2 * N;
    int ED = sED;
    int rows = sB * sL;
    int nEb = (ED + sCe - 1) / sCe;
    if (gid < rows * N2) {
      float sum = 0f;
      for (int eb = 0; eb < nEb; eb++) {
        sum += part[pBcOff + eb * rows * N2 + gid];
      }
      int row = gid / N2;
      gact[ddbcOff + row * sP + sR + gid - row * N2] += sum;
    } else if (gid < rows * N2 + N * ED) {
      int k = gid - rows * N2;
      int n = k / ED;
      int e = k - n * ED;
      float sum = 0f;
      for (int b = 0; b < sB * sParts; b++) {
        sum += part[pAOff + (b * N + n) * ED + e];
      }
      if (sGradMode == 0) {
        gact[dAOff + k] += sum;
      } else {
        G[dAOff + e * N + n] += sum * W[a2Off + k] * LN2;
      }
    } else if (gid < rows * N2 + N * ED + ED) {
      int e = gid - rows * N2 - N * ED;
      float sum = 0f;
      for (int b = 0; b < sB * sParts; b++) {
        sum += part[pDOff + b * ED + e];
      }
      if (sGradMode == 0) {
        gact[dDOff + e] += sum;
      } else {
        G[dDOff + e] += sum;
      }
    }
  }
}
