package org.mambaspark.kernel;

import com.aparapi.Range;
import com.aparapi.device.OpenCLDevice;
import java.util.ArrayList;
import java.util.List;

/**
 * Single operations of {@link MambaKernel} over host arrays, with the signatures of their CPU
 * references in {@code org.mambaspark.ops} (outputs first): what the kernel tests compare one by
 * one, and what {@link KernelBench} times for the SGEMM. Each call packs its operands into the
 * kernel's arrays, puts them, launches and gets the outputs: correct, not fast (the model keeps
 * everything resident instead, in {@link GpuModel}). Not thread-safe.
 */
final class DeviceOps implements AutoCloseable {
  final MambaKernel kernel;
  final OpenCLDevice device;
  private boolean checked;

  /** Benchmarks: accumulate OpenCL's kernel time of every launch into kernelNanos. */
  boolean profile;

  long kernelNanos;
  long launches;

  DeviceOps(OpenCLDevice device) {
    this.device = device;
    kernel = new MambaKernel();
    kernel.setExplicit(true);
    kernel.lmem = new float[MambaKernel.GEMM_LOCAL];
  }

  /** Packs host arrays one after another into one device array; offsets by order of adding. */
  private static final class Pack {
    private final List<float[]> parts = new ArrayList<>();
    private int size;

    int add(float[] a) {
      int off = size;
      if (a != null) {
        parts.add(a);
        size += a.length;
      }
      return off;
    }

    int addZeros(int n) {
      return add(new float[n]);
    }

    float[] array() {
      float[] r = new float[Math.max(1, size)];
      int o = 0;
      for (float[] p : parts) {
        System.arraycopy(p, 0, r, o, p.length);
        o += p.length;
      }
      return r;
    }
  }

  private void load(Pack act, Pack gact, Pack w, Pack g) {
    kernel.act = act.array();
    kernel.gact = gact.array();
    kernel.W = w.array();
    kernel.G = g.array();
    kernel.put(kernel.act).put(kernel.gact).put(kernel.W).put(kernel.G);
  }

  /**
   * As {@code Matmul.matmulForward}: out = inp @ weightᵀ + bias (then softplus when asked), for inp
   * rows (BT, C) at (inOff, inStride) and out rows (BT, OC) at (outOff, outStride).
   */
  void matmulForward(
      float[] out,
      int outOff,
      int outStride,
      float[] inp,
      int inOff,
      int inStride,
      float[] weight,
      float[] bias,
      int BT,
      int C,
      int OC,
      boolean softplus) {
    Pack a = new Pack();
    Pack w = new Pack();
    int oIn = a.add(inp);
    int oOut = a.add(out);
    int oW = w.add(weight);
    int oB = bias == null ? -1 : w.add(bias);
    load(a, new Pack(), w, new Pack());
    GemmLaunch.gemm(
        kernel,
        this::launch,
        new Product(
            BT,
            OC,
            C,
            new Product.View(MambaKernel.SEL_ACT, oIn + inOff, inStride, 1),
            new Product.View(MambaKernel.SEL_W, oW, 1, C),
            new Product.View(MambaKernel.SEL_ACT, oOut + outOff, outStride, 1),
            oB,
            false,
            softplus ? MambaKernel.ACT_SOFTPLUS : MambaKernel.ACT_NONE));
    kernel.get(kernel.act);
    System.arraycopy(kernel.act, oOut, out, 0, out.length);
  }

  /**
   * As {@code Matmul.matmulBackward}: dinp += dout @ weight, dweight += doutᵀ @ inp, dbias += Σ_t
   * dout (each may be null), through the GEMM's two transposed forms and the column sums.
   */
  void matmulBackward(
      float[] dinp,
      int dinpOff,
      int dinpStride,
      float[] dweight,
      float[] dbias,
      float[] dout,
      int doutOff,
      int doutStride,
      float[] inp,
      int inOff,
      int inStride,
      float[] weight,
      int BT,
      int C,
      int OC) {
    Pack a = new Pack();
    Pack ga = new Pack();
    Pack w = new Pack();
    Pack g = new Pack();
    int oIn = a.add(inp);
    int oDout = ga.add(dout);
    int oDinp = ga.add(dinp);
    int oW = w.add(weight);
    int oDw = g.add(dweight);
    int oDb = g.add(dbias);
    load(a, ga, w, g);
    int rb = BackwardPlan.COLSUM_ROWS;
    kernel.part = new float[(int) Math.max((long) ((BT + rb - 1) / rb) * OC, 16L * OC * C)];
    int GA = MambaKernel.SEL_GACT;
    if (dinp != null) {
      GemmLaunch.gemm(
          kernel,
          this::launch,
          new Product(
              BT,
              C,
              OC,
              new Product.View(GA, oDout + doutOff, doutStride, 1),
              new Product.View(MambaKernel.SEL_W, oW, C, 1),
              new Product.View(GA, oDinp + dinpOff, dinpStride, 1),
              -1,
              true,
              MambaKernel.ACT_NONE));
    }
    if (dweight != null) {
      GemmLaunch.gemm(
          kernel,
          this::launch,
          new Product(
              OC,
              C,
              BT,
              new Product.View(GA, oDout + doutOff, 1, doutStride),
              new Product.View(MambaKernel.SEL_ACT, oIn + inOff, inStride, 1),
              new Product.View(MambaKernel.SEL_G, oDw, C, 1),
              -1,
              true,
              MambaKernel.ACT_NONE));
    }
    if (dbias != null) {
      colsum(BT, OC, GA, oDout + doutOff, doutStride, MambaKernel.SEL_G, oDb);
    }
    kernel.get(kernel.gact).get(kernel.G);
    if (dinp != null) {
      System.arraycopy(kernel.gact, oDinp, dinp, 0, dinp.length);
    }
    if (dweight != null) {
      System.arraycopy(kernel.G, oDw, dweight, 0, dweight.length);
    }
    if (dbias != null) {
      System.arraycopy(kernel.G, oDb, dbias, 0, dbias.length);
    }
  }

  /** As {@code RmsNorm.rmsnormForward} (rstd may be null). */
  void rmsnormForward(
      float[] out, float[] rstd, float[] inp, float[] weight, int BT, int D, float eps) {
    Pack a = new Pack();
    Pack w = new Pack();
    int oIn = a.add(inp);
    int oOut = a.addZeros(BT * D);
    int oR = a.addZeros(BT);
    int oW = w.add(weight);
    load(a, new Pack(), w, new Pack());
    kernel.rnD = D;
    kernel.rnEps = eps;
    kernel.rnInSel = MambaKernel.SEL_ACT;
    kernel.rnInOff = oIn;
    kernel.rnOutSel = MambaKernel.SEL_ACT;
    kernel.rnOutOff = oOut;
    kernel.rnWOff = oW;
    kernel.rnRstdOff = oR;
    launch(MambaKernel.OP_RMSNORM, BT * 128, 128);
    kernel.get(kernel.act);
    System.arraycopy(kernel.act, oOut, out, 0, BT * D);
    if (rstd != null) {
      System.arraycopy(kernel.act, oR, rstd, 0, BT);
    }
  }

  /** As {@code RmsNorm.rmsnormBackward}: dinp += ..., dweight += ... . */
  void rmsnormBackward(
      float[] dinp,
      float[] dweight,
      float[] dout,
      float[] inp,
      float[] weight,
      float[] rstd,
      int BT,
      int D) {
    Pack a = new Pack();
    Pack ga = new Pack();
    Pack w = new Pack();
    Pack g = new Pack();
    int oIn = a.add(inp);
    int oR = a.add(rstd);
    int oDout = ga.add(dout);
    int oDinp = ga.add(dinp);
    int oW = w.add(weight);
    int oDw = g.add(dweight);
    load(a, ga, w, g);
    int rb = BackwardPlan.COLSUM_ROWS;
    kernel.part = new float[((BT + rb - 1) / rb) * D];
    kernel.rnD = D;
    kernel.rnInSel = MambaKernel.SEL_ACT;
    kernel.rnInOff = oIn;
    kernel.rnWOff = oW;
    kernel.rnRstdOff = oR;
    kernel.rnDoutSel = MambaKernel.SEL_GACT;
    kernel.rnDoutOff = oDout;
    kernel.rnDinpSel = MambaKernel.SEL_GACT;
    kernel.rnDinpOff = oDinp;
    launch(MambaKernel.OP_RMSNORM_BWD, BT * 128, 128);
    kernel.cpRows = BT;
    kernel.cpCols = D;
    kernel.cpRowBlock = rb;
    kernel.cpMode = 1;
    kernel.cpASel = MambaKernel.SEL_GACT;
    kernel.cpAOff = oDout;
    kernel.cpAStride = D;
    kernel.cpBSel = MambaKernel.SEL_ACT;
    kernel.cpBOff = oIn;
    kernel.cpBStride = D;
    kernel.cpRstdOff = oR;
    kernel.cpPartOff = 0;
    kernel.cpDstSel = MambaKernel.SEL_G;
    kernel.cpDstOff = oDw;
    launch(MambaKernel.OP_COLSUM_PART, ((BT + rb - 1) / rb) * D, 128);
    launch(MambaKernel.OP_COLSUM_FIN, D, 128);
    kernel.get(kernel.gact).get(kernel.G);
    System.arraycopy(kernel.gact, oDinp, dinp, 0, dinp.length);
    System.arraycopy(kernel.G, oDw, dweight, 0, dweight.length);
  }

  /**
   * As {@code Conv1d.convForward} (out after SiLU; the pre-activation is not kept), then, when a
   * state is given, {@code Conv1d.updateState} (the state is updated in place).
   */
  void convForward(
      float[] out,
      float[] inp,
      int inOff,
      int inStride,
      float[] state,
      float[] weight,
      float[] bias,
      int B,
      int L,
      int ED,
      int K) {
    Pack a = new Pack();
    Pack w = new Pack();
    int oIn = a.add(inp);
    int oOut = a.addZeros(B * L * ED);
    int oW = w.add(weight);
    int oB = bias == null ? -1 : w.add(bias);
    load(a, new Pack(), w, new Pack());
    // never a zero-length array: OpenCL refuses the buffer and Aparapi drops to Java for good
    boolean hasState = state != null && state.length > 0;
    kernel.state = hasState ? state.clone() : new float[1];
    kernel.put(kernel.state);
    setConv(B, L, ED, K, oIn + inOff, inStride, oOut, oW, oB);
    kernel.cvStateOff = hasState ? 0 : -1;
    launch(MambaKernel.OP_CONV, B * L * ED, 256);
    if (hasState) {
      launch(MambaKernel.OP_CONV_STATE, B * ED, 256);
      kernel.get(kernel.state);
      System.arraycopy(kernel.state, 0, state, 0, state.length);
    }
    kernel.get(kernel.act);
    System.arraycopy(kernel.act, oOut, out, 0, B * L * ED);
  }

  /** As {@code Conv1d.convBackward} (fresh sequences): dinp, dweight, dbias +=. */
  void convBackward(
      float[] dinp,
      float[] dweight,
      float[] dbias,
      float[] dout,
      float[] inp,
      int inOff,
      int inStride,
      float[] weight,
      float[] bias,
      int B,
      int L,
      int ED,
      int K) {
    Pack a = new Pack();
    Pack ga = new Pack();
    Pack w = new Pack();
    Pack g = new Pack();
    int oIn = a.add(inp);
    int oDout = ga.add(dout);
    int oDinp = ga.add(dinp);
    int oDpre = ga.addZeros(B * L * ED);
    int oW = w.add(weight);
    int oB = bias == null ? -1 : w.add(bias);
    int oDw = g.add(dweight);
    int oDb = dbias == null ? -1 : g.add(dbias);
    load(a, ga, w, g);
    int rb = BackwardPlan.COLSUM_ROWS;
    int nRb = (B * L + rb - 1) / rb;
    kernel.part = new float[nRb * ED * (K + 1)];
    setConv(B, L, ED, K, oIn + inOff, inStride, oDpre, oW, oB);
    kernel.cvStateOff = -1;
    kernel.cvDxsOff = oDout;
    kernel.cvDxOff = oDinp + inOff;
    kernel.cvPartOff = 0;
    kernel.cvRowBlock = rb;
    kernel.cvGwOff = oDw;
    kernel.cvGbOff = oDb;
    launch(MambaKernel.OP_CONV_BWD_DPRE, B * L * ED, 256);
    launch(MambaKernel.OP_CONV_BWD_DX, B * L * ED, 256);
    launch(MambaKernel.OP_CONV_BWD_DW, nRb * ED, 128);
    launch(MambaKernel.OP_CONV_BWD_DW_FIN, ED * (K + 1), 128);
    kernel.get(kernel.gact).get(kernel.G);
    System.arraycopy(kernel.gact, oDinp, dinp, 0, dinp.length);
    System.arraycopy(kernel.G, oDw, dweight, 0, dweight.length);
    if (dbias != null) {
      System.arraycopy(kernel.G, oDb, dbias, 0, dbias.length);
    }
  }

  private void setConv(int B, int L, int ED, int K, int in, int inStride, int out, int w, int b) {
    kernel.cvB = B;
    kernel.cvL = L;
    kernel.cvED = ED;
    kernel.cvK = K;
    kernel.cvInOff = in;
    kernel.cvInStride = inStride;
    kernel.cvOutOff = out;
    kernel.cvWOff = w;
    kernel.cvBiasOff = b;
  }

  /**
   * The softplus backward as the model runs it, from Δ = softplus(pre) instead of pre: dy *=
   * σ(pre), in place.
   */
  void softplusBackward(float[] dy, float[] delta) {
    Pack a = new Pack();
    Pack ga = new Pack();
    int oD = a.add(delta);
    int oDy = ga.add(dy);
    load(a, ga, new Pack(), new Pack());
    kernel.eN = dy.length;
    kernel.eDstOff = oDy;
    kernel.eSrcOff = oD;
    launch(MambaKernel.OP_SOFTPLUS_BWD, dy.length, 256);
    kernel.get(kernel.gact);
    System.arraycopy(kernel.gact, oDy, dy, 0, dy.length);
  }

  /**
   * Cross-entropy of rows of V logits against targets (-1: no target): loss per row into losses;
   * with grad, the logits are replaced by scale·(softmax − onehot).
   */
  void crossEntropy(
      float[] losses, float[] logits, int[] targets, int rows, int V, float scale, boolean grad) {
    Pack a = new Pack();
    int oL = a.add(logits);
    load(a, new Pack(), new Pack(), new Pack());
    kernel.ids = targets.clone();
    kernel.out = new float[rows];
    kernel.put(kernel.ids).put(kernel.out);
    kernel.ceV = V;
    kernel.ceLogOff = oL;
    kernel.ceTgtOff = 0;
    kernel.ceLossOff = 0;
    kernel.ceGrad = grad ? 1 : 0;
    kernel.ceScale = scale;
    launch(MambaKernel.OP_CROSS_ENTROPY, rows * 256, 256);
    kernel.get(kernel.out);
    System.arraycopy(kernel.out, 0, losses, 0, rows);
    if (grad) {
      kernel.get(kernel.act);
      System.arraycopy(kernel.act, oL, logits, 0, rows * V);
    }
  }

  /** x (BT, D) = embeddings[ids]; with dx, also dEmb (V, D) += scatter of dx by the ids. */
  void embedding(float[] x, float[] dEmb, float[] dx, float[] emb, int[] ids, int BT, int D) {
    Pack a = new Pack();
    Pack ga = new Pack();
    Pack w = new Pack();
    Pack g = new Pack();
    int oX = a.addZeros(BT * D);
    int oDx = ga.add(dx);
    int oE = w.add(emb);
    int oG = g.add(dEmb);
    load(a, ga, w, g);
    // ids | tokens | starts | positions, as Layout lays them out
    int V = emb.length / D;
    int[] count = new int[V + 1];
    for (int t = 0; t < BT; t++) {
      count[ids[t] + 1]++;
    }
    for (int v = 0; v < V; v++) {
      count[v + 1] += count[v];
    }
    int[] kid = new int[4 * BT + 1];
    System.arraycopy(ids, 0, kid, 0, BT);
    int u = 0;
    for (int v = 0; v < V; v++) {
      if (count[v + 1] > count[v]) {
        kid[BT + u] = v;
        kid[2 * BT + u] = count[v];
        u++;
      }
    }
    kid[2 * BT + u] = BT;
    int[] next = java.util.Arrays.copyOf(count, V);
    for (int t = 0; t < BT; t++) {
      kid[3 * BT + 1 + next[ids[t]]++] = t;
    }
    kernel.ids = kid;
    kernel.put(kernel.ids);
    kernel.eN = BT * D;
    kernel.eDstOff = oX;
    kernel.embOff = oE;
    kernel.embD = D;
    kernel.idsOff = 0;
    launch(MambaKernel.OP_EMBED, BT * D, 256);
    kernel.get(kernel.act);
    System.arraycopy(kernel.act, oX, x, 0, BT * D);
    if (dx != null) {
      kernel.ebUnique = u;
      kernel.ebTokOff = BT;
      kernel.ebStartOff = 2 * BT;
      kernel.ebPosOff = 3 * BT + 1;
      kernel.ebDxOff = oDx;
      kernel.embOff = oG;
      launch(MambaKernel.OP_EMBED_BWD, u * D, 256);
      kernel.get(kernel.G);
      System.arraycopy(kernel.G, oG, dEmb, 0, dEmb.length);
    }
  }

  // ---- the SGEMM alone, resident (KernelBench)

  /**
   * Puts random operands for C (M, N) = A (M, K) · Bᵀ (B is (N, K), the forward's weight layout) on
   * the device; {@link #gemmLaunch} then runs the product alone.
   */
  void gemmPrepare(int M, int N, int K, long seed) {
    java.util.SplittableRandom r = new java.util.SplittableRandom(seed);
    kernel.act =
        new float[KernelMemory.checkedSize((long) M * K + (long) M * N, "the GEMM operands")];
    kernel.W = new float[KernelMemory.checkedSize((long) N * K, "the GEMM weight")];
    for (int i = 0; i < M * K; i++) {
      kernel.act[i] = (float) r.nextGaussian();
    }
    for (int i = 0; i < kernel.W.length; i++) {
      kernel.W[i] = (float) r.nextGaussian();
    }
    kernel.put(kernel.act).put(kernel.W);
    kernel.gM = M;
    kernel.gN = N;
    kernel.gK = K;
    kernel.gASel = MambaKernel.SEL_ACT;
    kernel.gAOff = 0;
    kernel.gARs = K;
    kernel.gACs = 1;
    kernel.gBSel = MambaKernel.SEL_W;
    kernel.gBOff = 0;
    kernel.gBKs = 1;
    kernel.gBNs = K;
    kernel.gCSel = MambaKernel.SEL_ACT;
    kernel.gCOff = M * K;
    kernel.gCRs = N;
    kernel.gBiasOff = -1;
    kernel.gAccum = 0;
    kernel.gAct = MambaKernel.ACT_NONE;
  }

  /** One launch of the prepared GEMM (no transfers). */
  void gemmLaunch() {
    GemmLaunch.launchTiles(kernel, this::launch);
  }

  // ---- launches

  private void colsum(
      int rows, int cols, int srcSel, int srcOff, int stride, int dstSel, int dstOff) {
    kernel.cpRows = rows;
    kernel.cpCols = cols;
    kernel.cpRowBlock = BackwardPlan.COLSUM_ROWS;
    kernel.cpMode = 0;
    kernel.cpASel = srcSel;
    kernel.cpAOff = srcOff;
    kernel.cpAStride = stride;
    kernel.cpPartOff = 0;
    kernel.cpDstSel = dstSel;
    kernel.cpDstOff = dstOff;
    int nRb = (rows + BackwardPlan.COLSUM_ROWS - 1) / BackwardPlan.COLSUM_ROWS;
    launch(MambaKernel.OP_COLSUM_PART, nRb * cols, 128);
    launch(MambaKernel.OP_COLSUM_FIN, cols, 128);
  }

  void launch(int op, int global, int local) {
    if (global <= 0) {
      return;
    }
    kernel.op = op;
    int g = (int) (((long) global + local - 1) / local * local);
    kernel.execute(Range.create(device, g, local));
    launches++;
    if (profile) {
      kernelNanos += KernelTimer.lastKernelNanos(kernel);
    }
    if (!checked) {
      OpenClDevices.checkRanOnDevice(kernel, device, "the layer kernel");
      checked = true;
    }
  }

  @Override
  public void close() {
    kernel.dispose();
  }
}
