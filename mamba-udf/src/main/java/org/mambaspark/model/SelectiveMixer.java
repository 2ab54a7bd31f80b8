package org.mambaspark.model;

import java.util.Arrays;
import java.util.IdentityHashMap;
import org.mambaspark.ops.Activations;
import org.mambaspark.ops.Conv1d;
import org.mambaspark.ops.Matmul;
import org.mambaspark.ops.RmsNorm;
import org.mambaspark.ops.SelectiveScan;

/**
 * Mamba-1's mixer (HF {@code MambaMixer.slow_forward}), and Falcon-Mamba's, which differs only in
 * weightless RMSNorms (ε = mixer_rms_eps) on x_proj's three outputs before they are used:
 *
 * <pre>
 *   [x | z] = in_proj(u)                                   (BT, 2ED)
 *   xs = silu(conv(x))                                     (BT, ED)
 *   [δ | B | C] = x_proj(xs)                               (BT, R+2N)   Falcon: each part rmsnormed
 *   Δ = softplus(dt_proj(δ))                               (BT, ED)
 *   y = scan(xs, Δ, A = -exp(A_log), B, C) + D·xs, · silu(z)
 *   out = out_proj(y)                                      (BT, D)
 * </pre>
 *
 * The SSM state is (B, N, ED) per layer (transposed from HF's (B, ED, N), see SelectiveScan).
 */
final class SelectiveMixer implements Mixer {
  private final MambaConfig c;
  private final boolean falcon;
  private final int D;
  private final int ED;
  private final int N;
  private final int R;
  private final int K;
  private final int P;

  SelectiveMixer(MambaConfig c) {
    this.c = c;
    this.falcon = c.architecture == Architecture.FALCON_MAMBA;
    this.D = c.hiddenSize;
    this.ED = c.intermediateSize;
    this.N = c.stateSize;
    this.R = c.timeStepRank;
    this.K = c.convKernel;
    this.P = c.xProjSize();
  }

  /** One layer's intermediate tensors over BT = B·L positions. */
  static final class Acts implements Buffers {
    final int scanChunk;
    final float[] xz; //      (BT, 2ED)    in_proj output: [x | z]
    final float[] xs; //      (BT, ED)     conv + silu output, the scan's u
    final float[] dbc; //     (BT, R+2N)   x_proj output: [Δ rank | B | C]
    final float[] dbcN; //    (BT, R+2N)   Falcon: its parts rmsnormed; else dbc itself
    final float[] delta; //   (BT, ED)     softplus(dt_proj(Δ rank))
    final float[] y; //       (BT, ED)     gated scan output, out_proj's input
    // A = -exp(A_log)ᵀ (N, ED) per layer, by the layer's A_log array: an inference workspace
    // shares one Acts among the layers, and a decode step would otherwise pay N·ED exps and a
    // transpose in every layer for every token
    private final IdentityHashMap<float[], float[][]> aTByALog = new IdentityHashMap<>();
    private float[] h0; //    (B, N, ED)   the zero state of fresh sequences (grown on demand)
    // Saved for the backward pass only (null in inference):
    final float[] convPre; // (BT, ED)     conv output before silu
    final float[] dtPre; //   (BT, ED)     dt_proj output before softplus
    final float[] hChunks; // (B, chunks, N, ED) scan states at chunk boundaries
    final float[] rstdDbc; // (3, BT)      Falcon: 1/rms of the Δ rank, B and C parts

    Acts(MambaConfig c, boolean falcon, int B, int L, boolean training, int scanChunk) {
      int BT = B * L, ED = c.intermediateSize, P = c.xProjSize(), N = c.stateSize;
      this.scanChunk = scanChunk;
      xz = new float[BT * 2 * ED];
      xs = new float[BT * ED];
      dbc = new float[BT * P];
      dbcN = falcon ? new float[BT * P] : dbc;
      delta = new float[BT * ED];
      y = new float[BT * ED];
      convPre = training ? new float[BT * ED] : null;
      dtPre = training ? new float[BT * ED] : null;
      hChunks = training ? new float[B * SelectiveScan.chunkCount(L, scanChunk) * N * ED] : null;
      rstdDbc = falcon ? new float[3 * BT] : null;
    }

    /**
     * A = -exp(aLog)ᵀ (N, ED), recomputed only when aLog differs from the A_log it was last
     * computed from: an optimizer or a test may change A_log in place between calls, and comparing
     * the two arrays costs a fraction of the exps.
     */
    float[] aT(float[] aLog, int ED, int N) {
      float[][] e = aTByALog.get(aLog);
      if (e == null) {
        e = new float[][] {new float[N * ED], new float[ED * N]};
        aTByALog.put(aLog, e);
      } else if (Arrays.equals(e[1], aLog)) {
        return e[0];
      }
      negExpTransposed(e[0], aLog, ED, N);
      System.arraycopy(aLog, 0, e[1], 0, ED * N);
      return e[0];
    }

    /** A zeroed state of {@code size} floats (an inference workspace's B varies per call). */
    float[] zeroState(int size) {
      if (h0 == null || h0.length != size) {
        h0 = new float[size];
      } else {
        Arrays.fill(h0, 0f);
      }
      return h0;
    }
  }

  /** Gradient scratch, reused per layer. */
  static final class Scratch implements Buffers {
    final float[] dxz; //    (BT, 2ED)
    final float[] dxs; //    (BT, ED)
    final float[] ddbc; //   (BT, R+2N)
    final float[] ddbcN; //  (BT, R+2N)  Falcon: the gradient of the normed parts; else ddbc
    final float[] ddelta; // (BT, ED)
    final float[] dy; //     (BT, ED)
    final float[] dAT; //    (N, ED)

    Scratch(MambaConfig c, boolean falcon, int B, int L) {
      int BT = B * L, ED = c.intermediateSize, P = c.xProjSize();
      dxz = new float[BT * 2 * ED];
      dxs = new float[BT * ED];
      ddbc = new float[BT * P];
      ddbcN = falcon ? new float[BT * P] : ddbc;
      ddelta = new float[BT * ED];
      dy = new float[BT * ED];
      dAT = new float[c.stateSize * ED];
    }
  }

  @Override
  public BlockWeights newWeights() {
    return new LayerWeights(c);
  }

  @Override
  public Buffers newActivations(int B, int L, boolean training, int scanChunk) {
    return new Acts(c, falcon, B, L, training, scanChunk);
  }

  @Override
  public Buffers newScratch(int B, int L) {
    return new Scratch(c, falcon, B, L);
  }

  /** aT (N, ED) = -exp(A_log)ᵀ, transposed for the scan's channel-contiguous loop. */
  static void negExpTransposed(float[] aT, float[] aLog, int ED, int N) {
    for (int e = 0; e < ED; e++) {
      for (int n = 0; n < N; n++) {
        aT[n * ED + e] = aLog[e * N + n];
      }
    }
    Activations.expInPlace(aT, 0, N * ED);
    for (int i = 0; i < N * ED; i++) {
      aT[i] = -aT[i];
    }
  }

  @Override
  public void forward(
      float[] out,
      float[] xNorm,
      BlockWeights bw,
      BlockMatrices m,
      Buffers act,
      float[] convState,
      float[] ssmState,
      int B,
      int L) {
    LayerWeights w = (LayerWeights) bw;
    Acts a = (Acts) act;
    int BT = B * L;
    float[] aT = a.aT(w.aLog, ED, N);
    Matmul.matmulForward(a.xz, 0, 2 * ED, xNorm, 0, D, m.inProj, w.inProjBias, BT);
    boolean step = L == 1 && convState != null && a.convPre == null; // a decode step
    if (step) {
      Conv1d.convStep(a.xs, a.xz, 0, 2 * ED, convState, w.conv1dWeight, w.conv1dBias, B, ED, K);
    } else {
      Conv1d.convForward(
          a.xs, a.convPre, a.xz, 0, 2 * ED, convState, w.conv1dWeight, w.conv1dBias, B, L, ED, K);
      if (convState != null) {
        Conv1d.updateState(convState, a.xz, 0, 2 * ED, B, L, ED, K);
      }
    }
    Matmul.matmulForward(a.dbc, 0, P, a.xs, 0, ED, m.xProj, null, BT);
    if (falcon) {
      int[] off = {0, R, R + N};
      int[] width = {R, N, N};
      for (int s = 0; s < 3; s++) {
        RmsNorm.rmsnormColumnsForward(
            a.dbcN, a.rstdDbc, s * BT, a.dbc, off[s], P, BT, width[s], c.mixerRmsEps);
      }
    }
    float[] h = ssmState != null ? ssmState : a.zeroState(B * N * ED);
    if (step) {
      SelectiveScan.stepForward(
          a.y,
          h,
          a.xs,
          a.delta,
          aT,
          a.dbcN,
          R,
          w.dtProj,
          w.dtProjBias,
          w.dSkip,
          a.xz,
          ED,
          2 * ED,
          B,
          ED,
          N);
    } else {
      Matmul.matmulForward(a.delta, 0, ED, a.dbcN, 0, P, w.dtProj, w.dtProjBias, BT, R, ED);
      if (a.dtPre != null) {
        System.arraycopy(a.delta, 0, a.dtPre, 0, BT * ED);
      }
      Activations.softplusForward(a.delta, 0, ED, BT, ED);
      if (a.hChunks != null) {
        SelectiveScan.saveChunkStates(
            a.hChunks, a.scanChunk, h, a.xs, a.delta, aT, a.dbcN, R, B, L, ED, N);
      }
      SelectiveScan.scanForward(
          a.y, h, a.xs, a.delta, aT, a.dbcN, R, w.dSkip, a.xz, ED, 2 * ED, B, L, ED, N);
    }
    Matmul.matmulForward(out, 0, D, a.y, 0, ED, m.outProj, w.outProjBias, BT);
  }

  @Override
  public void backward(
      float[] dxNorm,
      BlockWeights gw,
      float[] dout,
      float[] xNorm,
      BlockWeights bw,
      Buffers act,
      Buffers scratch,
      int B,
      int L) {
    LayerWeights lw = (LayerWeights) bw;
    LayerWeights g = (LayerWeights) gw;
    Acts a = (Acts) act;
    Scratch s = (Scratch) scratch;
    int BT = B * L;
    float[] aT = a.aT(lw.aLog, ED, N);
    Arrays.fill(s.dy, 0f);
    Matmul.matmulBackward(
        s.dy, 0, ED, g.outProj, g.outProjBias, dout, 0, D, a.y, 0, ED, lw.outProj, BT, ED, D);
    // scan (with D skip and gate): du, dΔ, dA, dB, dC, dD, dz
    Arrays.fill(s.dxs, 0f);
    Arrays.fill(s.ddelta, 0f);
    Arrays.fill(s.dAT, 0f);
    Arrays.fill(s.ddbcN, 0f);
    Arrays.fill(s.dxz, 0f);
    SelectiveScan.scanBackward(
        s.dxs,
        s.ddelta,
        s.dAT,
        s.ddbcN,
        g.dSkip,
        s.dxz,
        s.dy,
        a.hChunks,
        a.scanChunk,
        a.xs,
        a.delta,
        aT,
        a.dbcN,
        R,
        lw.dSkip,
        a.xz,
        ED,
        2 * ED,
        B,
        L,
        ED,
        N);
    // A = -exp(A_log)  =>  dA_log = dA · A   (dAT and aT are (N, ED); A_log is (ED, N))
    for (int e = 0; e < ED; e++) {
      for (int n = 0; n < N; n++) {
        g.aLog[e * N + n] += s.dAT[n * ED + e] * aT[n * ED + e];
      }
    }
    // Δ = softplus(dt_proj(dbc[:, :R]))
    Activations.softplusBackward(s.ddelta, a.dtPre, 0, ED, BT, ED);
    Matmul.matmulBackward(
        s.ddbcN, 0, P, g.dtProj, g.dtProjBias, s.ddelta, 0, ED, a.dbcN, 0, P, lw.dtProj, BT, R, ED);
    if (falcon) { // the three weightless norms
      Arrays.fill(s.ddbc, 0f);
      int[] off = {0, R, R + N};
      int[] width = {R, N, N};
      for (int k = 0; k < 3; k++) {
        RmsNorm.rmsnormColumnsBackward(
            s.ddbc, s.ddbcN, a.dbc, a.rstdDbc, k * BT, off[k], P, BT, width[k]);
      }
    }
    // dbc = x_proj(xs)
    Matmul.matmulBackward(
        s.dxs, 0, ED, g.xProj, null, s.ddbc, 0, P, a.xs, 0, ED, lw.xProj, BT, ED, P);
    // xs = silu(conv(xz[:, :ED]))
    Conv1d.convBackward(
        s.dxz,
        g.conv1dWeight,
        g.conv1dBias,
        s.dxs,
        a.convPre,
        a.xz,
        0,
        2 * ED,
        lw.conv1dWeight,
        B,
        L,
        ED,
        K);
    // xz = in_proj(xNorm)
    Matmul.matmulBackward(
        dxNorm,
        0,
        D,
        g.inProj,
        g.inProjBias,
        s.dxz,
        0,
        2 * ED,
        xNorm,
        0,
        D,
        lw.inProj,
        BT,
        D,
        2 * ED);
  }

  /**
   * As HF's {@code MambaPreTrainedModel._init_weights} and PyTorch's module defaults (see {@link
   * Initialization}): Linear weights U(±1/√fan_in), conv U(±1/√K), dt_proj.weight U(±R^-½ ·
   * time_step_scale), dt_proj.bias = softplus⁻¹(dt) with dt log-uniform in [time_step_min,
   * time_step_max] floored at time_step_floor, A_log[e, n] = log(n + 1) (S4D-real), D = 1.
   */
  @Override
  public void initialize(BlockWeights bw, InitDraws rnd) {
    LayerWeights l = (LayerWeights) bw;
    Initialization.uniform(l.inProj, 1 / Math.sqrt(D), rnd);
    Initialization.uniform(l.conv1dWeight, 1 / Math.sqrt(K), rnd);
    if (l.conv1dBias != null) {
      Initialization.uniform(l.conv1dBias, 1 / Math.sqrt(K), rnd);
    }
    Initialization.uniform(l.xProj, 1 / Math.sqrt(ED), rnd);
    Initialization.uniform(l.dtProj, c.timeStepScale / Math.sqrt(R), rnd);
    Initialization.timeStepBias(l.dtProjBias, c, rnd);
    for (int e = 0; e < ED; e++) {
      for (int n = 0; n < N; n++) {
        l.aLog[e * N + n] = (float) Math.log(n + 1);
      }
    }
    Arrays.fill(l.dSkip, 1f);
    Initialization.uniform(l.outProj, 1 / Math.sqrt(ED), rnd);
    Initialization.rescaleResidual(l.outProj, c);
    // in_proj / out_proj biases stay 0
  }
}
