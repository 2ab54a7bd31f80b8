package org.mambaspark.kernel;

import static org.mambaspark.kernel.StepKernel.C_ACT;

import java.util.Arrays;
import org.mambaspark.model.Architecture;
import org.mambaspark.model.MambaConfig;

/**
 * The passes of one decode step for B sequences ({@link StepKernel}). Per layer, with few rows (the
 * products run as GEMV): in_proj with the layer's rmsnorm and the conv step fused, x_proj, dt_proj
 * + scan step (Falcon-Mamba's part norms inside), out_proj into the residual stream; then lm_head
 * with the final norm fused, into {@code out} (and, for greedy steps, each row's argmax into ids).
 * With more rows the wide products are tiled and the norms and the conv run as passes of their own;
 * beyond 32 rows out_proj too. A tiled product whose column tiles are too few for the device splits
 * its k into parts; the next pass sums them (out_proj's the norm, in_proj's the conv step) or, for
 * other products, a summing pass. Each matrix is read where it lives (W, or its slab as fp32 bits
 * or bf16). Built once per batch size; the records go to the device once.
 */
final class DecodePlan {
  /** The step's passes (the last writes the logits into out), then one argmax pass. */
  final int[] records;

  final float[] eps;

  /** Passes up to the logits; the argmax pass after them is launched only for greedy steps. */
  final int passes;

  final int batch;
  private final DeviceWeights wl;
  private final int units;

  /** A split product whose sum pass is not yet placed ({@link #add}). */
  private int[] pendingSum;

  private final int[] rec;
  private final float[] recEps;
  private int added; // records written so far

  /**
   * @param ssmOff per layer, the scan state (B, N, ED) in the state array
   * @param convOff per layer, the conv's kept inputs (B, ED, K−1)
   */
  DecodePlan(MambaConfig c, DeviceWeights wl, Layout a, int[] ssmOff, int[] convOff, int idsOff) {
    this.wl = wl;
    this.units = a.computeUnits;
    this.batch = a.B;
    int layers = c.numLayers;
    int most = 10 * layers + 5;
    this.rec = new int[most * StepKernel.REC];
    this.recEps = new float[most * StepKernel.REC];
    int B = a.B;
    int D = c.hiddenSize;
    int ED = c.intermediateSize;
    int N = c.stateSize;
    int R = c.timeStepRank;
    int P = c.xProjSize();
    int V = c.vocabSize;
    int K = c.convKernel;
    float e = c.layerNormEpsilon;
    boolean falcon = c.architecture == Architecture.FALCON_MAMBA;
    boolean ssd = c.architecture == Architecture.MAMBA2;
    add(e, StepKernel.P_EMBED, B, D, idsOff, a.x, (int) wl.emb);
    for (int l = 0; l < layers && ssd; l++) {
      add(e, StepKernel.P_RMSNORM, B, D, a.x, a.xNorm, wl.norm[l]);
      ssdLayer(c, l, a, ssmOff[l], convOff[l]);
    }
    for (int l = 0; l < layers && !ssd; l++) {
      int[] in = matrix(l, wl.inProj[l]);
      if (kind(B, 2 * ED) == StepKernel.P_GEMV) {
        add(
            e,
            StepKernel.P_GEMV,
            B,
            2 * ED,
            D,
            a.x,
            D,
            in[0],
            in[1],
            C_ACT,
            a.xz,
            2 * ED,
            wl.inProjBias[l],
            0,
            0,
            StepKernel.FUSE_NORM | StepKernel.FUSE_CONV,
            wl.norm[l],
            ED,
            K,
            wl.convW[l],
            wl.convB[l],
            convOff[l],
            a.xs);
      } else {
        add(e, StepKernel.P_RMSNORM, B, D, a.x, a.xNorm, wl.norm[l]);
        product(in, B, 2 * ED, D, a.xNorm, D, C_ACT, a.xz, 2 * ED, wl.inProjBias[l], 0, true);
        add(
            0f,
            StepKernel.P_CONV,
            B,
            ED,
            K,
            a.xz,
            2 * ED,
            a.xs,
            wl.convW[l],
            wl.convB[l],
            convOff[l]);
      }
      product(matrix(l, wl.xProj[l]), B, P, ED, a.xs, ED, C_ACT, a.dbc, P, -1, 0, false);
      int[] dt = matrix(l, wl.dtProj[l]);
      add(
          c.mixerRmsEps,
          StepKernel.P_SCAN_DT,
          B,
          ED,
          N,
          a.dbc,
          P,
          R,
          a.xs,
          a.xz + ED,
          2 * ED,
          a.y,
          wl.a2[l],
          wl.dSkip[l],
          ssmOff[l],
          dt[0],
          dt[1],
          wl.dtProjBias[l],
          falcon ? 1 : 0);
      product(
          matrix(l, wl.outProj[l]), B, D, ED, a.y, ED, C_ACT, a.x, D, wl.outProjBias[l], 1, true);
    }
    int headSlab = wl.staged ? wl.lmHeadSlab : -1;
    int head = (int) wl.lmHead;
    if (kind(B, V) == StepKernel.P_GEMV) {
      add(
          e,
          StepKernel.P_GEMV,
          B,
          V,
          D,
          a.x,
          D,
          headSlab,
          head,
          StepKernel.C_OUT,
          0,
          V,
          -1,
          0,
          0,
          StepKernel.FUSE_NORM,
          wl.normF);
    } else {
      add(e, StepKernel.P_RMSNORM, B, D, a.x, a.hidden, wl.normF);
      product(
          new int[] {headSlab, head}, B, V, D, a.hidden, D, StepKernel.C_OUT, 0, V, -1, 0, false);
    }
    placePendingSum();
    this.passes = added;
    add(0f, StepKernel.P_ARGMAX, B, V, a.next);
    this.records = Arrays.copyOf(rec, added * StepKernel.REC);
    this.eps = Arrays.copyOf(recEps, added * StepKernel.REC);
  }

  /**
   * A Mamba-2 mixer's step after its norm: in_proj, the conv step over xBC, the SSD step, the gated
   * norm, out_proj into the residual stream (as {@code SsdMixer.forward} with L = 1).
   */
  private void ssdLayer(MambaConfig c, int l, Layout a, int ssmOff, int convOff) {
    int B = a.B;
    int D = c.hiddenSize;
    int ED = c.intermediateSize;
    int I = c.inProjSize();
    int C = c.convChannels();
    int[] in = matrix(l, wl.inProj[l]);
    product(in, B, I, D, a.xNorm, D, C_ACT, a.xz, I, wl.inProjBias[l], 0, false);
    add(
        0f,
        StepKernel.P_CONV,
        B,
        C,
        c.convKernel,
        a.xz + ED,
        I,
        a.xs,
        wl.convW[l],
        wl.convB[l],
        convOff);
    add(
        SsdRecords.scan(c, wl, l, a, 1, ssmOff, StepKernel.STEP_LOCAL),
        c.timeStepLimitMin,
        c.timeStepLimitMax);
    add(SsdRecords.gatedNorm(c, wl, l, a), c.layerNormEpsilon);
    int[] out = matrix(l, wl.outProj[l]);
    product(out, B, D, ED, a.dbc, ED, C_ACT, a.x, D, wl.outProjBias[l], 1, true);
  }

  private void add(int[] r, float... floats) {
    add(0f, r);
    System.arraycopy(floats, 0, recEps, (added - 1) * StepKernel.REC, floats.length);
  }

  /**
   * Where layer l's matrix at W offset wOff is read: {slab, offset}, the slab −1 for W; in the
   * staged placement its slab, whose layer layout mirrors the stage area's.
   */
  private int[] matrix(int l, int wOff) {
    if (!wl.staged) {
      return new int[] {-1, wOff};
    }
    return new int[] {wl.layerSlab[l], (int) (wl.layerAt[l] + wOff - wl.stage)};
  }

  /**
   * C (B, N) (+)= act[aOff] (B, K) · the matrix (N, K)ᵀ at {slab, offset} w, C at cOff of act or
   * out ({@code cTo}). A tiled product split over k has its parts summed by the next pass when
   * {@code carried} (out_proj by the norm, Mamba-1's in_proj by the conv step: see {@link #add}),
   * else by a pass of its own.
   */
  private void product(
      int[] w,
      int B,
      int N,
      int K,
      int aOff,
      int aRs,
      int cTo,
      int cOff,
      int cRs,
      int biasOff,
      int acc,
      boolean carried) {
    int kind = kind(B, N);
    // a sum the next pass carries costs no pass, so two parts repay it; four a summing pass
    int split = kParts(N, K, units, carried ? 2 : 4);
    if (kind == StepKernel.P_GEMV && B > 32 && acc == 1 && carried && split > 1) {
      // out_proj adding into the residual stream: the GEMV would read its matrix once for each
      // eight rows, while the split product's sum rides on the next norm, no pass of its own
      kind = StepKernel.P_GEMM;
    }
    // int 14: the tiled product's k parts; the GEMV's fusions (none here)
    int parts = kind == StepKernel.P_GEMM ? split : 0;
    int[] r = {kind, B, N, K, aOff, aRs, w[0], w[1], cTo, cOff, cRs, biasOff, acc, 0, parts};
    add(0f, r);
    if (parts > 1) {
      r[0] = StepKernel.P_GEMM_SUM;
      pendingSum = r;
    }
  }

  /**
   * The tiled product for more than eight rows and enough columns to give every compute unit a
   * tile; the GEMV otherwise (its weight loads, not A's, bound it there).
   */
  static int kind(int M, int N) {
    return M > 8 && N >= 16 * StepKernel.TILE ? StepKernel.P_GEMM : StepKernel.P_GEMV;
  }

  /**
   * How many parts a tiled product's k is split into: as many as keep its column tiles × parts
   * within one work-group a compute unit (so that a product of few columns, such as out_proj's,
   * still occupies the device), each part at least two k-steps, and none empty; no split below
   * {@code least} parts.
   */
  static int kParts(int N, int K, int units, int least) {
    int tiles = (N + StepKernel.TILE - 1) / StepKernel.TILE;
    int steps = (K + StepKernel.TILE_K - 1) / StepKernel.TILE_K;
    int parts = Math.min(units / tiles, steps / 2);
    if (parts < least) {
      return 1;
    }
    int len = StepKernel.kPartLength(K, parts); // the kernel's k range a part
    return (K + len - 1) / len;
  }

  /** Floats of {@code part} a split product of B rows may use: k parts × B × N ≤ units · 64 · B. */
  static long partFloats(int B, int units) {
    return B > 8 ? (long) (units + 1) * StepKernel.TILE * B : 0;
  }

  /**
   * Whether norm record n ([P_RMSNORM, B, D, in, …]) can sum split product p: p adds (no softplus)
   * to exactly the rows of D the norm reads.
   */
  private static boolean sumsInto(int[] p, int[] n) {
    return p[8] == C_ACT
        && p[12] == 1
        && p[13] == 0
        && p[1] == n[1]
        && p[2] == n[2]
        && p[10] == n[2]
        && p[9] == n[3];
  }

  /**
   * Whether conv record v ([P_CONV, B, ED, K, in, inStride, …]) can sum split product p: p writes
   * (no accumulation, no softplus) the rows of 2·ED columns, x then z, that the conv reads x from
   * (Mamba-1's in_proj).
   */
  private static boolean convSums(int[] p, int[] v) {
    return p[8] == C_ACT
        && p[12] == 0
        && p[13] == 0
        && p[1] == v[1]
        && p[2] == 2 * v[2]
        && p[10] == p[2]
        && v[5] == p[2]
        && p[9] == v[4];
  }

  /**
   * Appends a pass. A split product's sum goes into this pass when it is the rmsnorm of the rows
   * the product adds to (out_proj into the residual stream, then the next norm) or the conv step
   * over the in_proj columns it wrote, else before it.
   */
  private void add(float epsilon, int... r) {
    if (pendingSum != null && r[0] == StepKernel.P_RMSNORM && sumsInto(pendingSum, r)) {
      r = Arrays.copyOf(r, 8);
      r[6] = pendingSum[14];
      r[7] = pendingSum[11];
      pendingSum = null;
    } else if (pendingSum != null && r[0] == StepKernel.P_CONV && convSums(pendingSum, r)) {
      r = Arrays.copyOf(r, 12);
      r[10] = pendingSum[14];
      r[11] = pendingSum[11];
      pendingSum = null;
    }
    placePendingSum();
    System.arraycopy(r, 0, rec, added * StepKernel.REC, r.length);
    recEps[added * StepKernel.REC] = epsilon;
    added++;
  }

  private void placePendingSum() {
    if (pendingSum != null) {
      int[] r = pendingSum;
      pendingSum = null;
      add(0f, r);
    }
  }
}
