package org.mambaspark.kernel;

import java.util.Arrays;
import org.mambaspark.model.Architecture;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.TokenIds;

/**
 * One call's buffer layout (B sequences of L tokens, inference or training): the offsets of its
 * tensors in the kernel's act, gact, part and ids arrays, and the scan tilings it runs with. The
 * arrays grow to the largest call and are reused ({@link #bind}).
 */
final class Layout {
  /** Partial sums room for split-K weight-gradient products (floats). */
  static final long SPLIT_K_PART = 1 << 23;

  private final MambaConfig c;
  final int B;
  final int L;
  final int BT;
  final boolean training;
  final ScanTiling scanFwd;
  final ScanTiling scanBwd;
  final int chunks;

  /** Parts each row's chunks are split into across work-groups for the scan backward. */
  final int scanParts;

  final int logitRows;
  // act
  final int x; //       (BT, D) residual stream
  final int xNorm; //   (BT, D)
  final int xz; //      (BT, 2ED); Mamba-2 (BT, I): [z | xBC | δ]
  final int xs; //      (BT, ED); Mamba-2 (BT, C): silu(conv(xBC))
  final int dbc; //     (BT, P); Mamba-2 (BT, ED): the gated norm's output
  final int delta; //   (BT, ED)
  final int y; //       (BT, ED)
  final int hidden; //  (BT, D) norm_f output
  final int rstd; //    (BT) the current layer's 1/rms
  final int rstdF; //   (BT) norm_f's
  final int partRstd; // (3, BT) Falcon-Mamba: the 1/rms of x_proj's Δ-rank, B and C parts
  final int hc; //      (B, chunks, N, ED) training; Mamba-2 (B, H, P, N): a stateless scan's state
  final int ssdSave; // Mamba-2 training: (B, ssdChunks, H, P, N) the states at chunk starts
  final int logits; //  (logitRows, V)
  final long actTotal;
  // gact (training); Mamba-2: dxz (BT, I), dxs (BT, C) the conv output's, ddbc (BT, ED) the gated
  // norm output's, ddelta (BT, ED) dΔ's terms per channel, dpre (BT, C) also the gated norm's
  // weight-gradient terms (BT, ED) before the conv's backward uses it
  final int dx;
  final int dxNorm;
  final int dxz;
  final int dxs;
  final int ddbc;
  final int ddelta;
  final int dy;
  final int dhidden;
  final int dpre;
  final int ssdHs; //   Mamba-2: (B, H, P, ssdQ, N) one chunk's states
  final int ssdDh; //   (B, H, P, ssdQ, N) their gradients
  final int ssdCarry; // (B, H, P, N) dh carried into the previous chunk
  final int ssdSumA; // (B, H, P) Σ_t of dA's terms
  final int ssdSumD; // (B, H, P) Σ_t of dD's terms
  final long gactTotal;
  final long partTotal;

  /** The device's compute units (a decode step's split products are sized by them). */
  final int computeUnits;

  /**
   * Mamba-2's training scan: positions a chunk (the smallest power of two ≥ √L, which keeps the
   * saved chunk-start states and one chunk's states equally small) and chunks.
   */
  final int ssdQ;

  final int ssdChunks;
  // ids
  final int ids;
  final int tgt;

  /** A decode step's greedy next tokens (B): the targets' place, which a step does not use. */
  final int next;

  final int ebTok;
  final int ebStart;
  final int ebPos;

  Layout(MambaConfig c, Tilings tilings, int B, int L, boolean training) {
    this.c = c;
    this.B = B;
    this.L = L;
    this.BT = B * L;
    this.training = training;
    long BT = (long) B * L;
    int D = c.hiddenSize;
    int ED = c.intermediateSize;
    int N = c.stateSize;
    boolean ssd = c.architecture == Architecture.MAMBA2;
    boolean falcon = c.architecture == Architecture.FALCON_MAMBA;
    int P = ssd ? ED : c.xProjSize();
    int V = c.vocabSize;
    ScanTiling[] t =
        ScanTiling.fewRows(B, c.intermediateSize, tilings.computeUnits)
            ? tilings.narrow
            : tilings.wide;
    scanFwd = training ? t[1] : L <= tilings.step.chunk() ? tilings.step : t[0];
    scanBwd = t[2];
    scanParts =
        training && !ssd ? ScanTiling.backwardParts(B, ED, L, scanBwd, tilings.computeUnits) : 1;
    chunks = (L + scanFwd.chunk() - 1) / scanFwd.chunk();
    int q = 1;
    while ((long) q * q < L) {
      q *= 2;
    }
    ssdQ = q;
    ssdChunks = (L + q - 1) / q;
    logitRows = (int) Math.min(BT, Math.max(128, (1 << 26) / V));
    long state = (long) B * N * ED;
    long[] o = new long[15];
    long[] sz = {
      BT * D,
      BT * D,
      BT * c.inProjSize(),
      BT * c.convChannels(),
      BT * P,
      BT * ED,
      BT * ED,
      BT * D,
      BT,
      BT,
      falcon ? 3 * BT : 0,
      ssd ? state : training ? (long) B * chunks * N * ED : 0,
      ssd && training ? ssdChunks * state : 0,
      (long) logitRows * V
    };
    for (int i = 0; i < sz.length; i++) {
      o[i + 1] = o[i] + sz[i];
    }
    x = (int) o[0];
    xNorm = (int) o[1];
    xz = (int) o[2];
    xs = (int) o[3];
    dbc = (int) o[4];
    delta = (int) o[5];
    y = (int) o[6];
    hidden = (int) o[7];
    rstd = (int) o[8];
    rstdF = (int) o[9];
    partRstd = (int) o[10];
    hc = (int) o[11];
    ssdSave = (int) o[12];
    logits = (int) o[13];
    actTotal = o[14];
    long[] g = new long[15];
    long convOut = BT * c.convChannels();
    long[] gz = {
      BT * D,
      BT * D,
      BT * c.inProjSize(),
      convOut,
      BT * P,
      BT * ED,
      BT * ED,
      BT * D,
      convOut,
      ssd ? q * state : 0,
      ssd ? q * state : 0,
      ssd ? state : 0,
      ssd ? (long) B * ED : 0,
      ssd ? (long) B * ED : 0
    };
    if (training) {
      for (int i = 0; i < gz.length; i++) {
        g[i + 1] = g[i] + gz[i];
      }
    }
    dx = (int) g[0];
    dxNorm = (int) g[1];
    dxz = (int) g[2];
    dxs = (int) g[3];
    ddbc = (int) g[4];
    ddelta = (int) g[5];
    dy = (int) g[6];
    dhidden = (int) g[7];
    dpre = (int) g[8];
    ssdHs = (int) g[9];
    ssdDh = (int) g[10];
    ssdCarry = (int) g[11];
    ssdSumA = (int) g[12];
    ssdSumD = (int) g[13];
    gactTotal = g[14];
    int nEb = (ED + scanBwd.ce - 1) / scanBwd.ce;
    long nRb = (BT + BackwardPlan.COLSUM_ROWS - 1) / BackwardPlan.COLSUM_ROWS;
    // the selective scan backward's partial sums (Mamba-2's scan backward keeps its own in gact)
    // dB|dC per channel group; per row and part dA and dD, and the parts' adjoint carries and ΣΔ
    long scanPart = ssd ? 0 : (long) nEb * BT * 2 * N + 2L * B * scanParts * ((long) N * ED + ED);
    long widest =
        Math.max(D, Math.max(c.inProjSize(), (long) c.convChannels() * (c.convKernel + 1)));
    long colPart = nRb * widest;
    partTotal =
        training
            ? Math.max(SPLIT_K_PART, Math.max(scanPart, colPart))
            : L == 1 ? DecodePlan.partFloats(B, tilings.computeUnits) : 0;
    computeUnits = tilings.computeUnits;
    ids = 0;
    tgt = B * L;
    next = tgt;
    ebTok = 2 * B * L;
    ebStart = 3 * B * L;
    ebPos = 4 * B * L + 1;
  }

  /**
   * Grows the kernel's arrays to this call's sizes (they are kept for later calls) and puts the
   * call's token ids, next-token targets and, for training, the embedding gradient's index.
   */
  void bind(MambaKernel kernel, long wTotal, int[] tokens) {
    kernel.act = grow(kernel.act, actTotal, "activations for B·L = " + BT);
    if (training) {
      kernel.gact = grow(kernel.gact, gactTotal, "activation gradients for B·L = " + BT);
      kernel.saved =
          grow(kernel.saved, (long) c.numLayers * BT * c.hiddenSize, "saved layer inputs");
      if (kernel.G.length < wTotal) {
        kernel.G = new float[(int) wTotal];
      }
    }
    // not padded to stay put: the products split over k as far as part's length allows
    if (kernel.part.length < partTotal) {
      kernel.part = new float[KernelMemory.checkedSize(partTotal, "partial sums")];
    }
    int outNeed = Math.max(BT, B * c.vocabSize);
    if (kernel.out.length < outNeed) {
      kernel.out = new float[outNeed];
    }
    int idsNeed = 5 * BT + 1;
    if (kernel.ids.length < idsNeed) {
      kernel.ids = new int[idsNeed];
    }
    TokenIds.check(tokens, 0, BT, c.vocabSize);
    int[] kid = kernel.ids;
    for (int t = 0; t < BT; t++) {
      kid[ids + t] = tokens[t];
      kid[tgt + t] = (t % L) < L - 1 ? tokens[t + 1] : -1;
    }
    if (training) {
      embeddingIndex(kernel, tokens);
    }
    kernel.put(kernel.ids);
  }

  private static float[] grow(float[] arr, long need, String what) {
    if (arr.length >= need) {
      return arr;
    }
    return KernelMemory.residentFloats(need, what);
  }

  /** Positions sorted by token (counting sort): tokens (U), starts (U+1), positions (BT). */
  private void embeddingIndex(MambaKernel kernel, int[] tokens) {
    int V = c.vocabSize;
    int[] count = new int[V + 1];
    for (int t = 0; t < BT; t++) {
      count[tokens[t] + 1]++;
    }
    for (int v = 0; v < V; v++) {
      count[v + 1] += count[v];
    }
    int[] kid = kernel.ids;
    int u = 0;
    for (int v = 0; v < V; v++) {
      if (count[v + 1] > count[v]) {
        kid[ebTok + u] = v;
        kid[ebStart + u] = count[v];
        u++;
      }
    }
    kid[ebStart + u] = BT;
    int[] next = Arrays.copyOf(count, V);
    for (int t = 0; t < BT; t++) {
      kid[ebPos + next[tokens[t]]++] = t;
    }
    kernel.ebUnique = u;
  }

  /**
   * The device's scan tilings {inference forward, training forward, training backward} for batches
   * with many rows (B·ED) and for batches too narrow to fill the device with wide groups ({@link
   * ScanTiling#fewRows}); the training forward has the backward's chunk (it saves the chunk states
   * the backward starts from). Shrunk to the device's local memory when N is large.
   */
  static final class Tilings {
    final ScanTiling[] wide;
    final ScanTiling[] narrow;

    /**
     * The inference forward of a decode step (L ≤ 4): one segment of four positions, 64 channels a
     * group; a wide tiling's 64-position chunk would compute 63 empty positions for each real one.
     */
    final ScanTiling step;

    final int computeUnits;

    Tilings(int N, long local, int computeUnits) {
      wide = tilings(modelForwardTiling(), ScanTiling.BACKWARD, N, local);
      narrow = tilings(ScanTiling.FORWARD_FEW_ROWS, ScanTiling.BACKWARD_FEW_ROWS, N, local);
      step = ScanTiling.fit(new ScanTiling(64, 1, 4), N, local, false);
      this.computeUnits = computeUnits;
    }

    /**
     * The inference forward's scan tiling: {@link ScanTiling#FORWARD}, or {@code
     * -Dmamba.gpu.modelScan=CExS} (channels × segments, 4 positions a thread) for tuning. In the
     * whole-model kernel (H200, mamba-130m B=8 L=2048, 24 layers) 16×16 ran 15.0 ms, 8×16 16.3,
     * 16×8 17.0, 16×4 18.8 with version 4 (version 3, with more local memory a group, was best at
     * 16×4).
     */
    private static ScanTiling modelForwardTiling() {
      String p = System.getProperty("mamba.gpu.modelScan");
      if (p == null) {
        return ScanTiling.FORWARD;
      }
      int x = p.indexOf('x');
      try {
        return new ScanTiling(
            Integer.parseInt(p.substring(0, x)), Integer.parseInt(p.substring(x + 1)), 4);
      } catch (RuntimeException e) {
        throw new IllegalArgumentException(
            "-Dmamba.gpu.modelScan must be CExS, e.g. 16x4, got '" + p + "'", e);
      }
    }

    private static ScanTiling[] tilings(ScanTiling fwd, ScanTiling bwd, int N, long local) {
      ScanTiling b = ScanTiling.fit(bwd, N, local, true);
      return new ScanTiling[] {
        ScanTiling.fit(fwd, N, local, false), ScanTiling.forwardWithChunk(b, N, local), b
      };
    }
  }
}
