package org.mambaspark.kernel;

import com.aparapi.Range;
import com.aparapi.device.OpenCLDevice;
import java.util.Arrays;
import java.util.concurrent.locks.ReentrantLock;
import org.mambaspark.model.Architecture;
import org.mambaspark.model.Backend;
import org.mambaspark.model.LayerWeights;
import org.mambaspark.model.Mamba2LayerWeights;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.MambaState;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.ModelRunner;
import org.mambaspark.model.TokenIds;

/**
 * A {@link MambaModel} resident on an OpenCL device: the same forward, scoring, generation step and
 * training gradient as {@code MambaModel.forward}, {@code Scoring} and {@code Backprop}, as a chain
 * of {@link MambaKernel} launches on one kernel instance. Weights are packed into one device array
 * and put once (and again on {@link #reloadWeights}); per call only token ids (and a carried state)
 * go in, and hidden states, logits, losses or gradients come out.
 *
 * <p>Training recomputes each layer's forward during the backward from the layer's saved input
 * (activation checkpointing per layer): device memory holds numLayers·B·L·D floats of layer inputs
 * plus one layer's intermediates, instead of every layer's, at the price of one more forward of the
 * layers (about a third more arithmetic).
 *
 * <p>Calls are serialized on the device's lock: Spark task threads may share a runner (and a
 * device).
 */
final class GpuModel implements ModelRunner, MambaState.Holder {
  private final GpuBackend backend;
  private final MambaModel model;
  private final MambaConfig c;
  private final OpenCLDevice device;
  private final ReentrantLock lock;
  private final MambaKernel kernel;
  private final DeviceWeights wl;
  private final DeviceState states;
  private final boolean falcon;
  private final boolean ssd;
  private boolean checked;

  /** Benchmarks: accumulate OpenCL's kernel time of every launch into kernelNanos. */
  boolean profile;

  long kernelNanos;

  /** Benchmarks: when not null (and profiling), kernel time per op (GEMMs per shape). */
  java.util.Map<String, Long> opNanos;

  long launches;
  private boolean closed;

  /**
   * Scan tilings {inference forward, training forward, training backward} for batches with many
   * rows (B·ED) and for batches too narrow to fill the device with wide groups ({@link
   * ScanTiling#fewRows}); the training forward has the backward's chunk (it saves the chunk states
   * the backward starts from). Shrunk to the device's local memory when N is large.
   */
  private final ScanTiling[] scanWide;

  private final ScanTiling[] scanNarrow;

  /**
   * The inference forward of a decode step (L ≤ 4): one segment of four positions, 64 channels a
   * group; a wide tiling's 64-position chunk would compute 63 empty positions for each real one.
   */
  private final ScanTiling scanStep;

  /** Partial sums room for split-K weight-gradient products (floats). */
  static final long SPLIT_K_PART = 1 << 23;

  /** Rows per block of the column-sum reductions. */
  static final int COLSUM_ROWS = 256;

  /**
   * Which format the matrices are kept in on the device: {@code fp32} (default) or {@code bf16}.
   */
  static final String WEIGHTS_PROPERTY = "mamba.gpu.weights";

  GpuModel(GpuBackend backend, MambaModel model) {
    this(
        backend,
        model,
        DeviceWeights.Format.parse(deviceFormat(model)),
        DeviceWeights.ARRAY_FLOATS);
  }

  /**
   * The device format: the model's weight format (bf16 or fp32), else {@value #WEIGHTS_PROPERTY}.
   * Uploading needs the fp32 host arrays; int8 and a model loaded without them run on the CPU.
   */
  static String deviceFormat(MambaModel m) {
    if (m.weightsDtype == org.mambaspark.ops.WeightMatrix.Dtype.INT8 || !m.holdsFp32Matrices()) {
      throw new IllegalArgumentException(
          "the GPU kernels take fp32 or bf16 weights from fp32 host arrays; this model holds "
              + m.weightsDtype.label()
              + " matrices for the CPU");
    }
    return m.weightsDtype == org.mambaspark.ops.WeightMatrix.Dtype.BF16
        ? "bf16"
        : System.getProperty(WEIGHTS_PROPERTY, "fp32");
  }

  /**
   * @param arrayFloats the floats one device array may hold ({@link DeviceWeights#ARRAY_FLOATS};
   *     tests lower it to place small models as large ones are placed)
   * @throws IllegalArgumentException the model does not fit the device, with the bytes needed and
   *     available, before anything is uploaded
   */
  GpuModel(GpuBackend backend, MambaModel model, DeviceWeights.Format format, long arrayFloats) {
    this.backend = backend;
    this.model = model;
    this.c = model.config;
    this.device = backend.device;
    this.lock = backend.lock;
    this.falcon = c.architecture == Architecture.FALCON_MAMBA;
    this.ssd = c.architecture == Architecture.MAMBA2;
    if (ssd && c.stateSize > SsdKernel.SCAN_MAX_N) {
      throw new IllegalArgumentException(
          "the GPU's Mamba-2 scan takes state_size up to "
              + SsdKernel.SCAN_MAX_N
              + ", this model has "
              + c.stateSize);
    }
    this.wl = DeviceWeights.place(c, format, arrayFloats);
    wl.checkFits(device.getGlobalMemSize(), OpenClDevices.describe(device));
    kernel = new MambaKernel();
    kernel.setExplicit(true);
    states = new DeviceState(kernel, c, this);
    int N = c.stateSize;
    long local = device.getLocalMemSize();
    scanWide = tilings(modelForwardTiling(), ScanTiling.BACKWARD, N, local);
    scanNarrow = tilings(ScanTiling.FORWARD_FEW_ROWS, ScanTiling.BACKWARD_FEW_ROWS, N, local);
    scanStep = ScanTiling.fit(new ScanTiling(64, 1, 4), N, local, false);
    // fitVersion4 and forwardWithChunk fit the scans in the device's local memory (or say why not);
    // each launch gets its op's size (localFloats)
    kernel.lmem = localArray(1);
    kernel.W = new float[(int) wl.wTotal];
    kernel.G = new float[1];
    int[] slabInts = new int[MambaKernel.SLABS];
    for (int i = 0; i < slabInts.length; i++) {
      slabInts[i] = wl.slabInts(i);
    }
    kernel.S0 = new int[slabInts[0]];
    kernel.S1 = new int[slabInts[1]];
    kernel.S2 = new int[slabInts[2]];
    kernel.S3 = new int[slabInts[3]];
    kernel.S4 = new int[slabInts[4]];
    kernel.S5 = new int[slabInts[5]];
    kernel.S6 = new int[slabInts[6]];
    kernel.S7 = new int[slabInts[7]];
    kernel.wFmt =
        wl.format == DeviceWeights.Format.BF16 ? MambaKernel.WFMT_BF16 : MambaKernel.WFMT_F32;
    kernel.wPow2Off = Math.max(0, wl.pow2);
    kernel.embSlab = wl.embSlab;
    lock.lock();
    try {
      packWeights();
    } finally {
      lock.unlock();
    }
  }

  /**
   * The inference forward's scan tiling: {@link ScanTiling#FORWARD}, or {@code
   * -Dmamba.gpu.modelScan=CExS} (channels × segments, 4 positions a thread) for tuning. In the
   * whole-model kernel (H200, mamba-130m B=8 L=2048, 24 layers) 16×16 ran 15.0 ms, 8×16 16.3, 16×8
   * 17.0, 16×4 18.8 with version 4 (version 3, with more local memory a group, was best at 16×4).
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

  // ---- ModelRunner

  @Override
  public MambaModel model() {
    return model;
  }

  @Override
  public Backend backend() {
    return backend;
  }

  @Override
  public void forward(float[] hidden, int[] ids, int B, int L, MambaState state) {
    int rows = state == null ? rowsPerCall(B, L) : B;
    if (rows < B) {
      // fresh sequences whose activations exceed one device array: in groups of rows
      for (int b0 = 0; b0 < B; b0 += rows) {
        int n = Math.min(rows, B - b0);
        forwardRows(hidden, b0 * L * c.hiddenSize, rowsOf(ids, b0, n, L), n, L, null);
      }
    } else {
      forwardRows(hidden, 0, ids, B, L, state);
    }
  }

  /**
   * The most rows (≤ B) of length L whose activations fit one device array: a batch of a large
   * model's long sequences (mamba-2.8b at B=8, L=2048 needs 2.2 GB) runs as several calls.
   */
  private int rowsPerCall(int B, int L) {
    int rows = B;
    while (rows > 1 && new Layout(rows, L, false).actTotal > wl.arrayFloats) {
      rows = (rows + 1) / 2;
    }
    return rows;
  }

  private static int[] rowsOf(int[] ids, int b0, int n, int L) {
    return Arrays.copyOfRange(ids, b0 * L, (b0 + n) * L);
  }

  private void forwardRows(
      float[] hidden, int hiddenOff, int[] ids, int B, int L, MambaState state) {
    states.fromOtherDevice(state);
    lock.lock();
    try {
      Layout a = prepare(ids, B, L, false, state);
      try {
        forwardAll(a, state != null);
        if (hidden != null) {
          ensureHid(a.BT * c.hiddenSize);
          copy(MambaKernel.SEL_HID, 0, MambaKernel.SEL_ACT, a.hidden, a.BT * c.hiddenSize);
          kernel.get(kernel.hid);
          System.arraycopy(kernel.hid, 0, hidden, hiddenOff, a.BT * c.hiddenSize);
        }
        finish(state);
      } catch (RuntimeException e) {
        throw states.lost(state, e);
      }
    } finally {
      lock.unlock();
    }
  }

  @Override
  public void forwardLastLogits(float[] logits, int[] ids, int B, int L, MambaState state) {
    states.fromOtherDevice(state);
    lock.lock();
    try {
      Layout a = prepare(ids, B, L, false, state);
      try {
        lastLogits(logits, a, B, L, state);
        finish(state);
      } catch (RuntimeException e) {
        throw states.lost(state, e);
      }
    } finally {
      lock.unlock();
    }
  }

  private void lastLogits(float[] logits, Layout a, int B, int L, MambaState state) {
    if (L == 1 && state != null && B <= MambaKernel.GEMV_MAX_M && stepPlan) {
      decodeStep(logits, a);
      return;
    }
    forwardAll(a, state != null);
    int D = c.hiddenSize;
    int V = c.vocabSize;
    lmHead(B, a.hidden + (L - 1) * D, L * D, MambaKernel.SEL_OUT, 0, V);
    kernel.get(kernel.out);
    System.arraycopy(kernel.out, 0, logits, 0, B * V);
  }

  /**
   * Benchmarks: decode steps as one launch of {@link DecodePlan}'s passes (true), or as the
   * forward's launches with L = 1.
   */
  boolean stepPlan = true;

  private DecodePlan plan;

  /**
   * The launch table ({@link StepKernel#plan}): the forward's records ({@link #forwardSlots}:
   * Falcon's part norms for the layout {@link #normRows} names, or each Mamba-2 layer's scan and
   * gated norm, {@link #ssdRecords}), then the decode plan's records.
   */
  private long normRows = -1;

  /** One token a sequence through {@link StepKernel}: a single launch of the plan's passes. */
  private void decodeStep(float[] logits, Layout a) {
    int B = a.B;
    if (plan == null || plan.batch != B) {
      int[] ssm = new int[c.numLayers];
      int[] conv = new int[c.numLayers];
      for (int l = 0; l < c.numLayers; l++) {
        ssm[l] = states.ssmOff(l, B);
        conv[l] = states.convOff(l, B);
      }
      plan = new DecodePlan(c, wl, a, ssm, conv, a.ids);
      int head = forwardSlots() * StepKernel.REC;
      ensureTable(head + plan.records.length);
      System.arraycopy(plan.records, 0, kernel.plan, head, plan.records.length);
      System.arraycopy(plan.eps, 0, kernel.planF, head, plan.eps.length);
      putTable();
      ssdBackwardFor = -1; // its records were where the plan's now are
    }
    passes(forwardSlots(), plan.passes, "decode step (" + plan.passes + " passes)");
    int V = c.vocabSize;
    kernel.get(kernel.out);
    System.arraycopy(kernel.out, 0, logits, 0, B * V);
  }

  /**
   * Falcon-Mamba: the weightless norms of x_proj's Δ-rank, B and C parts, in place, their 1/rms
   * kept for the backward ({@link #partNormsBackward}, the table's next record).
   */
  private void partNorms(Layout a) {
    long key = 2L * a.BT + (a.training ? 1 : 0); // a training layout's gradient offsets
    if (normRows != key) {
      ensureTable(2 * StepKernel.REC);
      int P = c.xProjSize();
      int R = c.timeStepRank;
      int N = c.stateSize;
      int[] fwd = {StepKernel.P_SEGNORM, a.BT, P, R, N, a.dbc, a.partRstd};
      int[] bwd = {StepKernel.P_SEGNORM_BWD, a.BT, P, R, N, a.dbc, a.partRstd, a.ddbc};
      System.arraycopy(fwd, 0, kernel.plan, 0, fwd.length);
      System.arraycopy(bwd, 0, kernel.plan, StepKernel.REC, bwd.length);
      kernel.planF[0] = c.mixerRmsEps;
      putTable();
      normRows = key;
    }
    passes(0, 1, "falcon part norms");
  }

  /**
   * Falcon-Mamba: x_proj's output gradient (ddbc) from the normed parts' gradient, in place; the
   * records are {@link #partNorms}'s, which the layer's recompute has just run.
   */
  private void partNormsBackward() {
    passes(1, 1, "falcon part norms backward");
  }

  private void putTable() {
    kernel.put(kernel.plan);
    kernel.put(kernel.planF);
  }

  /**
   * Aparapi's profiling keeps one event of a launch of several passes (and the runtime crashed
   * reading them on the H100): with profiling on, each pass is a launch of its own.
   */
  private static final boolean PROFILING = Boolean.getBoolean("com.aparapi.enableProfiling");

  /** Records [first, first + n) of the launch table as one launch of n passes. */
  private void passes(int first, int n, String what) {
    passes(first, n, what, StepKernel.STEP_LOCAL);
  }

  /** As {@link #passes(int, int, String)}, with local floats other than a step's. */
  private void passes(int first, int n, String what, int localFloats) {
    kernel.op = StepKernel.OP_STEP;
    kernel.lmem = localArray(localFloats);
    int groups = device.getMaxComputeUnits() * 8;
    Range range = Range.create(device, groups * StepKernel.STEP_THREADS, StepKernel.STEP_THREADS);
    if (PROFILING) {
      for (int i = 0; i < n; i++) {
        kernel.planOff = (first + i) * StepKernel.REC;
        kernel.execute(range);
        launches++;
        if (profile) {
          long ns = KernelTimer.lastKernelNanos(kernel);
          kernelNanos += ns;
          if (opNanos != null) {
            opNanos.merge(
                "step pass kind " + kernel.plan[kernel.planOff] + " (" + what + ")", ns, Long::sum);
          }
        }
      }
    } else {
      kernel.planOff = first * StepKernel.REC;
      kernel.execute(range, n);
      launches++;
    }
    if (!checked) {
      OpenClDevices.checkRanOnDevice(kernel, device, "the model kernel");
      checked = true;
    }
  }

  // ---- the recurrent state, kept on the device between calls (DeviceState)

  @Override
  public void download(MambaState s) {
    lock.lock();
    try {
      states.download(s);
    } finally {
      lock.unlock();
    }
  }

  @Override
  public double nextTokenLossSum(float[] logprobs, int[] ids, int B, int L) {
    if (L < 2) {
      throw new IllegalArgumentException(
          "a loss needs sequences of at least 2 tokens, got length " + L);
    }
    int rows = rowsPerCall(B, L);
    double sum = 0;
    for (int b0 = 0; b0 < B; b0 += rows) {
      int n = Math.min(rows, B - b0);
      int[] part = rows < B ? rowsOf(ids, b0, n, L) : ids;
      lock.lock();
      try {
        Layout a = prepare(part, n, L, false, null);
        forwardAll(a, false);
        for (int r0 = 0; r0 < a.BT; r0 += a.logitRows) {
          lmHeadCrossEntropy(a, r0, Math.min(a.logitRows, a.BT - r0), 0f, false);
        }
        kernel.get(kernel.out);
        finish(null);
        sum += sumLosses(a, logprobs, b0 * (L - 1));
      } finally {
        lock.unlock();
      }
    }
    return sum;
  }

  @Override
  public double forwardBackward(MambaWeights grads, int[] ids, int B, int L, double scale) {
    if (wl.staged) {
      throw new UnsupportedOperationException(
          "GPU training keeps every parameter and its gradient in one device array (2 GiB, about"
              + " 500M fp32 parameters); this model is "
              + (wl.format == DeviceWeights.Format.BF16 ? "kept as bf16" : "larger")
              + ": train it on the CPU backend (-Dmamba.backend=cpu)");
    }
    if (L < 2) {
      throw new IllegalArgumentException(
          "training needs sequences of at least 2 tokens, got length " + L);
    }
    lock.lock();
    try {
      Layout a = prepare(ids, B, L, true, null);
      fill(MambaKernel.SEL_G, 0, (int) wl.wTotal);
      forwardAll(a, false);
      backwardAll(a, (float) scale);
      kernel.get(kernel.out);
      kernel.get(kernel.G);
      finish(null);
      addGradients(grads);
      return sumLosses(a, null, 0);
    } finally {
      lock.unlock();
    }
  }

  @Override
  public void reloadWeights() {
    lock.lock();
    try {
      packWeights();
    } finally {
      lock.unlock();
    }
  }

  @Override
  public void close() {
    lock.lock();
    try {
      if (!closed) {
        states.evict();
        closed = true;
        kernel.dispose();
      }
    } finally {
      lock.unlock();
    }
  }

  /**
   * Tests: the forward with every layer's residual stream and norm_f's output (hs, numLayers+1
   * arrays of (B·L, D), as HF's output_hidden_states without the embedding) and all logits (B·L,
   * V).
   */
  void forwardForTests(float[][] hs, float[] logits, int[] ids, int B, int L) {
    lock.lock();
    try {
      Layout a = prepare(ids, B, L, false, null);
      int BT = a.BT;
      int D = c.hiddenSize;
      int V = c.vocabSize;
      ensureHid((c.numLayers + 1) * BT * D + BT * V);
      embed(a);
      for (int l = 0; l < c.numLayers; l++) {
        layerForward(a, l, MambaKernel.SEL_ACT, a.x, false, true);
        copy(MambaKernel.SEL_HID, l * BT * D, MambaKernel.SEL_ACT, a.x, BT * D);
      }
      rmsnormInto(a, MambaKernel.SEL_ACT, a.x, a.hidden, wl.normF, -1);
      int hOff = c.numLayers * BT * D;
      copy(MambaKernel.SEL_HID, hOff, MambaKernel.SEL_ACT, a.hidden, BT * D);
      lmHead(BT, a.hidden, D, MambaKernel.SEL_HID, hOff + BT * D, V);
      kernel.get(kernel.hid);
      for (int l = 0; l <= c.numLayers; l++) {
        System.arraycopy(kernel.hid, l * BT * D, hs[l], 0, BT * D);
      }
      System.arraycopy(kernel.hid, hOff + BT * D, logits, 0, BT * V);
      finish(null);
    } finally {
      lock.unlock();
    }
  }

  // ---- weights

  /** Uploads the parameters: W and the slabs (the host arrays stay, as Aparapi maps by array). */
  private void packWeights() {
    int[][] slabs = slabs();
    wl.pack(kernel.W, slabs, model.weights);
    kernel.put(kernel.W);
    if (wl.staged) {
      for (int[] s : slabs) {
        if (s.length > 1) {
          kernel.put(s);
        }
      }
    }
  }

  private int[][] slabs() {
    MambaKernel k = kernel;
    return new int[][] {k.S0, k.S1, k.S2, k.S3, k.S4, k.S5, k.S6, k.S7};
  }

  /** Decodes layer l's matrices into W's stage area (staged placement only). */
  private void stageLayer(int l) {
    if (wl.staged) {
      stage(wl.layerSlab[l], wl.layerAt[l], wl.stage, wl.layerFloats);
    }
  }

  private void stage(int slab, long from, int to, int n) {
    kernel.stSlab = slab;
    kernel.stSrc = (int) from;
    kernel.stDst = to;
    kernel.stN = n;
    launch(MambaKernel.OP_STAGE, gridStride(n), 256);
  }

  /**
   * C (rows, V) at (cSel, cOff, row stride cRs) = hidden rows at act[aOff + r·aRs] (D) @ lm_headᵀ:
   * in one product when lm_head is in W, else in blocks of its rows staged into the stage area.
   */
  private void lmHead(int rows, int aOff, int aRs, int cSel, int cOff, int cRs) {
    int D = c.hiddenSize;
    int V = c.vocabSize;
    if (wl.staged && rows <= MambaKernel.GEMV_MAX_M) {
      // a decode step's logits: lm_head read where it lives
      productWithMatrix(
          wl.lmHeadSlab,
          rows,
          V,
          D,
          aOff,
          aRs,
          (int) wl.lmHead,
          cSel,
          cOff,
          cRs,
          -1,
          false,
          MambaKernel.ACT_NONE);
      return;
    }
    int block = wl.staged ? wl.stageFloats / D : V;
    for (int v0 = 0; v0 < V; v0 += block) {
      int n = Math.min(block, V - v0);
      int bOff = (int) wl.lmHead;
      if (wl.staged) {
        stage(wl.lmHeadSlab, wl.lmHead + (long) v0 * D, wl.stage, n * D);
        bOff = wl.stage;
      }
      productWithMatrix(
          -1, rows, n, D, aOff, aRs, bOff, cSel, cOff + v0, cRs, -1, false, MambaKernel.ACT_NONE);
    }
  }

  /**
   * C[cSel] (M, N) (+)= act rows (M, K) · a weight matrix (N, K)ᵀ at bOff of W, or of slab {@code
   * slab} when ≥ 0 (few rows: the GEMV reads slabs), + bias (W offset, or -1), then act.
   */
  private void productWithMatrix(
      int slab,
      int M,
      int N,
      int K,
      int aOff,
      int aRs,
      int bOff,
      int cSel,
      int cOff,
      int cRs,
      int biasOff,
      boolean accumulate,
      int act) {
    kernel.gBSlab = slab;
    try {
      matmul(
          new Product(
              M,
              N,
              K,
              new Product.View(MambaKernel.SEL_ACT, aOff, aRs, 1),
              new Product.View(MambaKernel.SEL_W, bOff, 1, K),
              new Product.View(cSel, cOff, cRs, 1),
              biasOff,
              accumulate,
              act));
    } finally {
      kernel.gBSlab = -1;
    }
  }

  private void addGradients(MambaWeights grads) {
    float[] G = kernel.G;
    for (int l = 0; l < grads.mamba2Layers.length; l++) {
      Mamba2LayerWeights g = grads.mamba2Layers[l];
      add(g.norm, G, wl.norm[l]);
      add(g.inProj, G, wl.inProj[l]);
      add(g.inProjBias, G, wl.inProjBias[l]);
      add(g.conv1dWeight, G, wl.convW[l]);
      add(g.conv1dBias, G, wl.convB[l]);
      add(g.dtBias, G, wl.dtProjBias[l]);
      add(g.aLog, G, wl.a2[l]);
      add(g.dSkip, G, wl.dSkip[l]);
      add(g.normWeight, G, wl.gatedNorm[l]);
      add(g.outProj, G, wl.outProj[l]);
      add(g.outProjBias, G, wl.outProjBias[l]);
    }
    for (int l = 0; l < grads.layers.length; l++) {
      LayerWeights g = grads.layers[l];
      add(g.norm, G, wl.norm[l]);
      add(g.inProj, G, wl.inProj[l]);
      add(g.inProjBias, G, wl.inProjBias[l]);
      add(g.conv1dWeight, G, wl.convW[l]);
      add(g.conv1dBias, G, wl.convB[l]);
      add(g.xProj, G, wl.xProj[l]);
      add(g.dtProj, G, wl.dtProj[l]);
      add(g.dtProjBias, G, wl.dtProjBias[l]);
      add(g.aLog, G, wl.a2[l]);
      add(g.dSkip, G, wl.dSkip[l]);
      add(g.outProj, G, wl.outProj[l]);
      add(g.outProjBias, G, wl.outProjBias[l]);
    }
    add(grads.normF, G, wl.normF);
    add(grads.embeddings, G, (int) wl.emb);
    if (!c.tieWordEmbeddings) {
      add(grads.lmHead, G, (int) wl.lmHead);
    }
  }

  private static void add(float[] dst, float[] G, int off) {
    if (dst != null) {
      for (int i = 0; i < dst.length; i++) {
        dst[i] += G[off + i];
      }
    }
  }

  // ---- per-call layout

  /**
   * Offsets of one call's tensors (B, L), in act, gact, saved, state and ids. Arrays grow to the
   * largest call and are reused.
   */
  final class Layout {
    final int B;
    final int L;
    final int BT;
    final boolean training;
    final ScanTiling scanFwd;
    final ScanTiling scanBwd;
    final int chunks;
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
    final int
        hc; //      (B, chunks, N, ED) training; Mamba-2 (B, H, P, N): a stateless scan's state
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

    /**
     * Mamba-2's training scan: positions a chunk (the smallest power of two ≥ √L, which keeps the
     * saved chunk-start states and one chunk's states equally small) and chunks.
     */
    final int ssdQ;

    final int ssdChunks;
    // ids
    final int ids;
    final int tgt;
    final int ebTok;
    final int ebStart;
    final int ebPos;

    Layout(int B, int L, boolean training) {
      this.B = B;
      this.L = L;
      this.BT = B * L;
      this.training = training;
      long BT = (long) B * L;
      int D = c.hiddenSize;
      int ED = c.intermediateSize;
      int N = c.stateSize;
      int P = ssd ? ED : c.xProjSize();
      int V = c.vocabSize;
      ScanTiling[] t =
          ScanTiling.fewRows(B, c.intermediateSize, device.getMaxComputeUnits())
              ? scanNarrow
              : scanWide;
      scanFwd = training ? t[1] : L <= scanStep.chunk() ? scanStep : t[0];
      scanBwd = t[2];
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
      long nRb = (BT + COLSUM_ROWS - 1) / COLSUM_ROWS;
      // the selective scan backward's partial sums (Mamba-2's scan backward keeps its own in gact)
      long scanPart = ssd ? 0 : (long) nEb * BT * 2 * N + (long) B * N * ED + (long) B * ED;
      long widest =
          Math.max(D, Math.max(c.inProjSize(), (long) c.convChannels() * (c.convKernel + 1)));
      long colPart = nRb * widest;
      partTotal = training ? Math.max(SPLIT_K_PART, Math.max(scanPart, colPart)) : 0;
      ids = 0;
      tgt = B * L;
      ebTok = 2 * B * L;
      ebStart = 3 * B * L;
      ebPos = 4 * B * L + 1;
    }
  }

  private Layout prepare(int[] ids, int B, int L, boolean training, MambaState state) {
    if (closed) {
      throw new IllegalStateException("this GPU runner is closed");
    }
    if (B <= 0 || L <= 0) {
      throw new IllegalArgumentException("B and L must be positive, got " + B + ", " + L);
    }
    if (ids.length < B * L) {
      throw new IllegalArgumentException(
          "ids holds " + ids.length + " tokens, expected B*L = " + B * L);
    }
    if (state != null && state.batch != B) {
      throw new IllegalArgumentException(
          "state is for batch " + state.batch + ", the input has batch " + B);
    }
    Layout a = new Layout(B, L, training);
    kernel.act = grow(kernel.act, a.actTotal, "activations for B·L = " + a.BT);
    if (training) {
      kernel.gact = grow(kernel.gact, a.gactTotal, "activation gradients for B·L = " + a.BT);
      kernel.saved =
          grow(kernel.saved, (long) c.numLayers * a.BT * c.hiddenSize, "saved layer inputs");
      kernel.part = grow(kernel.part, a.partTotal, "partial sums");
      if (kernel.G.length < wl.wTotal) {
        kernel.G = new float[(int) wl.wTotal];
      }
    }
    int outNeed = Math.max(a.BT, B * c.vocabSize);
    if (kernel.out.length < outNeed) {
      kernel.out = new float[outNeed];
    }
    int idsNeed = 5 * a.BT + 1;
    if (kernel.ids.length < idsNeed) {
      kernel.ids = new int[idsNeed];
    }
    TokenIds.check(ids, 0, a.BT, c.vocabSize);
    int[] kid = kernel.ids;
    for (int t = 0; t < a.BT; t++) {
      kid[a.ids + t] = ids[t];
      kid[a.tgt + t] = (t % L) < L - 1 ? ids[t + 1] : -1;
    }
    if (training) {
      embeddingIndex(a, ids);
    }
    kernel.put(kernel.ids);
    if (state != null) {
      states.upload(state);
    }
    return a;
  }

  private float[] grow(float[] arr, long need, String what) {
    if (arr.length >= need) {
      return arr;
    }
    return new float[KernelMemory.checkedSize(need, what)];
  }

  private void ensureHid(int n) {
    if (kernel.hid.length < n) {
      kernel.hid = new float[n];
    }
  }

  /** Positions sorted by token (counting sort): tokens (U), starts (U+1), positions (BT). */
  private void embeddingIndex(Layout a, int[] ids) {
    int V = c.vocabSize;
    int[] count = new int[V + 1];
    for (int t = 0; t < a.BT; t++) {
      count[ids[t] + 1]++;
    }
    for (int v = 0; v < V; v++) {
      count[v + 1] += count[v];
    }
    int[] kid = kernel.ids;
    int u = 0;
    for (int v = 0; v < V; v++) {
      if (count[v + 1] > count[v]) {
        kid[a.ebTok + u] = v;
        kid[a.ebStart + u] = count[v];
        u++;
      }
    }
    kid[a.ebStart + u] = a.BT;
    int[] next = Arrays.copyOf(count, V);
    for (int t = 0; t < a.BT; t++) {
      kid[a.ebPos + next[ids[t]]++] = t;
    }
    kernel.ebUnique = u;
  }

  private void finish(MambaState state) {
    if (!kernel.isRunningCL()) {
      throw new IllegalStateException(
          "Aparapi left OpenCL during this call (now on "
              + kernel.getTargetDevice()
              + "): the results were not computed on "
              + OpenClDevices.describe(device));
    }
    if (state != null) {
      states.hold(state);
    }
  }

  /** Σ of the call's per-token losses; logprobs[off + b·(L-1) + t] = -loss when not null. */
  private double sumLosses(Layout a, float[] logprobs, int off) {
    double sum = 0;
    int L = a.L;
    for (int b = 0; b < a.B; b++) {
      for (int t = 0; t < L - 1; t++) {
        float loss = kernel.out[b * L + t];
        sum += loss;
        if (logprobs != null) {
          logprobs[off + b * (L - 1) + t] = -loss;
        }
      }
    }
    return sum;
  }

  // ---- forward and backward as launch sequences

  /** act[x] = the embeddings of the call's ids. */
  private void embed(Layout a) {
    int D = c.hiddenSize;
    kernel.eN = a.BT * D;
    kernel.eDstOff = a.x;
    kernel.embOff = (int) wl.emb;
    kernel.embD = D;
    kernel.idsOff = a.ids;
    launch(MambaKernel.OP_EMBED, a.BT * D, 256);
  }

  private void forwardAll(Layout a, boolean withState) {
    int D = c.hiddenSize;
    embed(a);
    for (int l = 0; l < c.numLayers; l++) {
      if (a.training) {
        copy(MambaKernel.SEL_SAVED, l * a.BT * D, MambaKernel.SEL_ACT, a.x, a.BT * D);
      }
      layerForward(a, l, MambaKernel.SEL_ACT, a.x, withState, true);
    }
    rmsnormInto(a, MambaKernel.SEL_ACT, a.x, a.hidden, wl.normF, a.training ? a.rstdF : -1);
  }

  /**
   * One layer from its input (act's residual stream, or saved for the backward's recompute):
   * rmsnorm, in_proj, conv + silu, x_proj, dt_proj + softplus, scan; then, unless recomputing,
   * out_proj added into the residual stream.
   */
  private void layerForward(
      Layout a, int l, int inSel, int inOff, boolean withState, boolean residual) {
    if (ssd) {
      ssdLayerForward(a, l, inSel, inOff, withState, residual);
      return;
    }
    int BT = a.BT;
    int D = c.hiddenSize;
    int ED = c.intermediateSize;
    int R = c.timeStepRank;
    int P = c.xProjSize();
    boolean fromSlab = readsSlabs(a);
    if (!fromSlab) {
      stageLayer(l);
    }
    rmsnormInto(a, inSel, inOff, a.xNorm, wl.norm[l], a.training ? a.rstd : -1);
    layerProduct(
        l,
        fromSlab,
        BT,
        2 * ED,
        D,
        a.xNorm,
        D,
        wl.inProj[l],
        a.xz,
        2 * ED,
        wl.inProjBias[l],
        false,
        MambaKernel.ACT_NONE);
    setConv(a, l, withState);
    launch(MambaKernel.OP_CONV, gridStride(BT * ED), 256);
    if (withState) {
      launch(MambaKernel.OP_CONV_STATE, a.B * ED, 256);
    }
    layerProduct(
        l, fromSlab, BT, P, ED, a.xs, ED, wl.xProj[l], a.dbc, P, -1, false, MambaKernel.ACT_NONE);
    if (falcon) {
      partNorms(a);
    }
    layerProduct(
        l,
        fromSlab,
        BT,
        ED,
        R,
        a.dbc,
        P,
        wl.dtProj[l],
        a.delta,
        ED,
        wl.dtProjBias[l],
        false,
        MambaKernel.ACT_SOFTPLUS);
    setScan(a, l, withState);
    kernel.sSave = a.training && !residual ? 1 : 0; // the backward's recompute saves chunk states
    ScanTiling t = a.scanFwd;
    kernel.sCe = t.ce;
    kernel.sSeg = t.segments;
    kernel.sItems = t.items;
    launch(ScanKernel.OP_SCAN_FWD4, a.B * ((ED + t.ce - 1) / t.ce) * t.threads(), t.threads());
    if (residual) {
      layerProduct(
          l,
          fromSlab,
          BT,
          D,
          ED,
          a.y,
          ED,
          wl.outProj[l],
          a.x,
          D,
          wl.outProjBias[l],
          true,
          MambaKernel.ACT_NONE);
    }
  }

  /**
   * A Mamba-2 layer: rmsnorm, in_proj, the causal conv + silu over xBC, then {@link SsdKernel}'s
   * scan and gated norm as two passes of the launch table, and, unless recomputing for the
   * backward, out_proj added into the residual stream ({@code SsdMixer.forward}).
   */
  private void ssdLayerForward(
      Layout a, int l, int inSel, int inOff, boolean withState, boolean residual) {
    int BT = a.BT;
    int D = c.hiddenSize;
    int ED = c.intermediateSize;
    int I = c.inProjSize();
    int C = c.convChannels();
    int none = MambaKernel.ACT_NONE;
    rmsnormInto(a, inSel, inOff, a.xNorm, wl.norm[l], a.training ? a.rstd : -1);
    productWithMatrix(
        -1,
        BT,
        I,
        D,
        a.xNorm,
        D,
        wl.inProj[l],
        MambaKernel.SEL_ACT,
        a.xz,
        I,
        wl.inProjBias[l],
        false,
        none);
    setSsdConv(a, l, withState);
    launch(MambaKernel.OP_CONV, gridStride(BT * C), 256);
    if (withState) {
      launch(MambaKernel.OP_CONV_STATE, a.B * C, 256);
    }
    ssdRecords(a, withState);
    passes(2 * l, 2, "ssd scan + gated norm", SsdKernel.SCAN_LOCAL);
    if (!residual) {
      return;
    }
    productWithMatrix(
        -1,
        BT,
        D,
        ED,
        a.dbc,
        ED,
        wl.outProj[l],
        MambaKernel.SEL_ACT,
        a.x,
        D,
        wl.outProjBias[l],
        true,
        none);
  }

  /** (B, L, with a state) of the Mamba-2 forward records in the table, or null. */
  private String ssdRecordsFor;

  /** Mamba-2: records [2l, 2l + 2) of the launch table are layer l's scan and gated norm. */
  private void ssdRecords(Layout a, boolean withState) {
    String key = a.B + "x" + a.L + (withState ? " state" : "") + (a.training ? " training" : "");
    if (key.equals(ssdRecordsFor)) {
      return;
    }
    int REC = StepKernel.REC;
    ensureTable(forwardSlots() * REC);
    for (int l = 0; l < c.numLayers; l++) {
      int[] scan =
          SsdRecords.scan(
              c,
              wl,
              l,
              a,
              withState ? 1 : 0,
              withState ? states.ssmOff(l, a.B) : a.hc,
              SsdKernel.SCAN_LOCAL);
      System.arraycopy(scan, 0, kernel.plan, 2 * l * REC, scan.length);
      kernel.planF[2 * l * REC] = c.timeStepLimitMin;
      kernel.planF[2 * l * REC + 1] = c.timeStepLimitMax;
      int[] norm = SsdRecords.gatedNorm(c, wl, l, a);
      System.arraycopy(norm, 0, kernel.plan, (2 * l + 1) * REC, norm.length);
      kernel.planF[(2 * l + 1) * REC] = c.layerNormEpsilon;
    }
    putTable();
    ssdRecordsFor = key;
  }

  /**
   * Records at the head of the launch table for the forward (and Falcon-Mamba's part norms'
   * backward); the decode plan's, or Mamba-2's backward's, follow.
   */
  private int forwardSlots() {
    return ssd ? 2 * c.numLayers : 2;
  }

  /** The launch table holds at least n ints (the records it has are kept). */
  private void ensureTable(int n) {
    if (kernel.plan.length < n) {
      kernel.plan = Arrays.copyOf(kernel.plan, n);
      kernel.planF = Arrays.copyOf(kernel.planF, n);
    }
  }

  /**
   * Staged placement, few rows (a decode step: the products run as GEMV): the layer's matrices are
   * read from their slabs where they live, each element decoded once, instead of being staged
   * (which would write and read them again as fp32).
   */
  private boolean readsSlabs(Layout a) {
    return wl.staged && a.BT <= MambaKernel.GEMV_MAX_M;
  }

  /**
   * act[cOff] (M, N) (+)= act[aOff] (M, K) · layer l's matrix at W offset wOff (N, K)ᵀ (+ bias,
   * then act), the matrix read from its slab when fromSlab.
   */
  private void layerProduct(
      int l,
      boolean fromSlab,
      int M,
      int N,
      int K,
      int aOff,
      int aRs,
      int wOff,
      int cOff,
      int cRs,
      int biasOff,
      boolean accumulate,
      int act) {
    int slab = -1;
    int bOff = wOff;
    if (fromSlab) {
      slab = wl.layerSlab[l];
      bOff = (int) (wl.layerAt[l] + wOff - wl.stage); // the stage area mirrors the slab's layout
    }
    productWithMatrix(
        slab, M, N, K, aOff, aRs, bOff, MambaKernel.SEL_ACT, cOff, cRs, biasOff, accumulate, act);
  }

  private void setConv(Layout a, int l, boolean withState) {
    int ED = c.intermediateSize;
    kernel.cvB = a.B;
    kernel.cvL = a.L;
    kernel.cvED = ED;
    kernel.cvK = c.convKernel;
    kernel.cvInOff = a.xz;
    kernel.cvInStride = 2 * ED;
    kernel.cvOutOff = a.xs;
    kernel.cvWOff = wl.convW[l];
    kernel.cvBiasOff = wl.convB[l];
    kernel.cvStateOff = withState && c.convKernel > 1 ? states.convOff(l, a.B) : -1;
  }

  /** {@link #setConv} for Mamba-2's conv over xBC, in_proj's columns [ED, ED + C). */
  private void setSsdConv(Layout a, int l, boolean withState) {
    setConv(a, l, withState);
    kernel.cvED = c.convChannels();
    kernel.cvInOff = a.xz + c.intermediateSize;
    kernel.cvInStride = c.inProjSize();
  }

  private void setScan(Layout a, int l, boolean withState) {
    int ED = c.intermediateSize;
    kernel.sB = a.B;
    kernel.sL = a.L;
    kernel.sED = ED;
    kernel.sN = c.stateSize;
    kernel.sR = c.timeStepRank;
    kernel.sP = c.xProjSize();
    kernel.sChunks = a.chunks;
    kernel.sHasState = withState ? 1 : 0;
    kernel.sWriteState = withState ? 1 : 0;
    kernel.uOff = a.xs;
    kernel.dtOff = a.delta;
    kernel.dbcOff = a.dbc;
    kernel.zOff = a.xz + ED;
    kernel.zStride = 2 * ED;
    kernel.yOff = a.y;
    kernel.hcOff = a.hc;
    kernel.a2Off = wl.a2[l];
    kernel.dOff = wl.dSkip[l];
    kernel.hOff = withState ? states.ssmOff(l, a.B) : 0;
  }

  private void rmsnormInto(Layout a, int inSel, int inOff, int outOff, int wOff, int rstdOff) {
    kernel.rnD = c.hiddenSize;
    kernel.rnEps = c.layerNormEpsilon;
    kernel.rnInSel = inSel;
    kernel.rnInOff = inOff;
    kernel.rnOutSel = MambaKernel.SEL_ACT;
    kernel.rnOutOff = outOff;
    kernel.rnWOff = wOff;
    kernel.rnRstdOff = rstdOff;
    launch(MambaKernel.OP_RMSNORM, a.BT * 128, 128);
  }

  /** logits of rows [r0, r0+n) through lm_head, then their cross-entropy (and its gradient). */
  private void lmHeadCrossEntropy(Layout a, int r0, int n, float scale, boolean grad) {
    int D = c.hiddenSize;
    int V = c.vocabSize;
    lmHead(n, a.hidden + r0 * D, D, MambaKernel.SEL_ACT, a.logits, V);
    kernel.ceV = V;
    kernel.ceLogOff = a.logits;
    kernel.ceTgtOff = a.tgt + r0;
    kernel.ceLossOff = r0;
    kernel.ceGrad = grad ? 1 : 0;
    kernel.ceScale = scale;
    launch(MambaKernel.OP_CROSS_ENTROPY, n * 256, 256);
  }

  private void backwardAll(Layout a, float scale) {
    int BT = a.BT;
    int D = c.hiddenSize;
    int V = c.vocabSize;
    int ACT = MambaKernel.SEL_ACT;
    int GA = MambaKernel.SEL_GACT;
    int G = MambaKernel.SEL_G;
    int SAVED = MambaKernel.SEL_SAVED;
    // cross-entropy and lm_head, in row blocks: dhidden, dlm_head
    fill(GA, a.dhidden, BT * D);
    for (int r0 = 0; r0 < BT; r0 += a.logitRows) {
      int n = Math.min(a.logitRows, BT - r0);
      lmHeadCrossEntropy(a, r0, n, scale, true);
      linearBackward(
          n,
          V,
          D,
          ACT,
          a.logits,
          V,
          (int) wl.lmHead,
          a.hidden + r0 * D,
          D,
          a.dhidden + r0 * D,
          D,
          true);
    }
    // norm_f
    fill(GA, a.dx, BT * D);
    rmsnormBackward(a, GA, a.dhidden, ACT, a.x, wl.normF, a.rstdF);
    int I = c.inProjSize();
    for (int l = c.numLayers - 1; l >= 0; l--) {
      int in = l * BT * D;
      layerForward(a, l, SAVED, in, false, false);
      fill(GA, a.dxz, BT * I);
      if (ssd) {
        ssdMixerBackward(a, l);
      } else {
        selectiveMixerBackward(a, l);
      }
      // in_proj
      linearBackward(BT, I, D, GA, a.dxz, I, wl.inProj[l], a.xNorm, D, a.dxNorm, D, false);
      if (wl.inProjBias[l] >= 0) {
        colsum(BT, I, GA, a.dxz, I, G, wl.inProjBias[l]);
      }
      // the layer's rmsnorm
      rmsnormBackward(a, GA, a.dxNorm, SAVED, in, wl.norm[l], a.rstd);
    }
    // embeddings
    kernel.ebTokOff = a.ebTok;
    kernel.ebStartOff = a.ebStart;
    kernel.ebPosOff = a.ebPos;
    kernel.ebDxOff = a.dx;
    kernel.embOff = (int) wl.emb;
    kernel.embD = D;
    launch(MambaKernel.OP_EMBED_BWD, kernel.ebUnique * D, 256);
  }

  /**
   * A linear layer's backward ({@code Matmul.matmulBackward}) for y (M, N) = x (M, K) · Wᵀ, W (N,
   * K) at wOff: dx (gact, row stride dxRs) (+)= dy · W and dW += dyᵀ · x, with dy at (dySel, dyOff,
   * row stride dyRs) and x in act (row stride xRs); a bias's gradient is the caller's column sum.
   */
  private void linearBackward(
      int M,
      int N,
      int K,
      int dySel,
      int dyOff,
      int dyRs,
      int wOff,
      int xOff,
      int xRs,
      int dxOff,
      int dxRs,
      boolean accumulate) {
    int none = MambaKernel.ACT_NONE;
    matmul(
        new Product(
            M,
            K,
            N,
            new Product.View(dySel, dyOff, dyRs, 1),
            new Product.View(MambaKernel.SEL_W, wOff, K, 1),
            new Product.View(MambaKernel.SEL_GACT, dxOff, dxRs, 1),
            -1,
            accumulate,
            none));
    matmul(
        new Product(
            N,
            K,
            M,
            new Product.View(dySel, dyOff, 1, dyRs),
            new Product.View(MambaKernel.SEL_ACT, xOff, xRs, 1),
            new Product.View(MambaKernel.SEL_G, wOff, K, 1),
            -1,
            true,
            none));
  }

  /**
   * dy (BT, ED) = dx · out_proj, d out_proj += dxᵀ · the layer's out_proj input at act[inOff], d
   * bias += Σ_t dx.
   */
  private void outProjBackward(Layout a, int l, int inOff, int dyOff) {
    int BT = a.BT;
    int D = c.hiddenSize;
    int ED = c.intermediateSize;
    int GA = MambaKernel.SEL_GACT;
    int G = MambaKernel.SEL_G;
    linearBackward(BT, D, ED, GA, a.dx, D, wl.outProj[l], inOff, ED, dyOff, ED, false);
    if (wl.outProjBias[l] >= 0) {
      colsum(BT, D, GA, a.dx, D, G, wl.outProjBias[l]);
    }
  }

  /**
   * The causal conv + SiLU's backward for the conv fields set ({@link #setConv}): from its output's
   * gradient at gact[dxsOff] (BT, channels) into in_proj's output gradient (dxz), and its weight
   * and bias gradients.
   */
  private void convBackward(Layout a, int l, int dxsOff) {
    int BT = a.BT;
    int channels = kernel.cvED;
    kernel.cvOutOff = a.dpre;
    kernel.cvDxsOff = dxsOff;
    kernel.cvDxOff = a.dxz + (kernel.cvInOff - a.xz);
    kernel.cvPartOff = 0;
    kernel.cvRowBlock = COLSUM_ROWS;
    kernel.cvGwOff = wl.convW[l];
    kernel.cvGbOff = wl.convB[l];
    launch(MambaKernel.OP_CONV_BWD_DPRE, BT * channels, 256);
    launch(MambaKernel.OP_CONV_BWD_DX, BT * channels, 256);
    launch(MambaKernel.OP_CONV_BWD_DW, ((BT + COLSUM_ROWS - 1) / COLSUM_ROWS) * channels, 128);
    launch(MambaKernel.OP_CONV_BWD_DW_FIN, channels * (c.convKernel + 1), 128);
  }

  /**
   * Mamba-1's and Falcon-Mamba's mixer backward, from dx (the layer's output gradient) to dxz
   * (in_proj's output gradient), over the layer's recomputed forward ({@code SelectiveMixer}).
   */
  private void selectiveMixerBackward(Layout a, int l) {
    int BT = a.BT;
    int ED = c.intermediateSize;
    int R = c.timeStepRank;
    int P = c.xProjSize();
    int GA = MambaKernel.SEL_GACT;
    int G = MambaKernel.SEL_G;
    outProjBackward(a, l, a.y, a.dy);
    // scan
    fill(GA, a.ddbc, BT * P); // the scan writes du (dxs), dΔ and dz; dB|dC are added
    setScan(a, l, false);
    kernel.dyOff = a.dy;
    kernel.duOff = a.dxs;
    kernel.ddtOff = a.ddelta;
    kernel.ddbcOff = a.ddbc;
    kernel.dzOff = a.dxz + ED;
    int nEb = (ED + a.scanBwd.ce - 1) / a.scanBwd.ce;
    kernel.pBcOff = 0;
    kernel.pAOff = nEb * BT * 2 * c.stateSize;
    kernel.pDOff = kernel.pAOff + a.B * c.stateSize * ED;
    kernel.sGradMode = 1;
    kernel.dAOff = wl.a2[l];
    kernel.dDOff = wl.dSkip[l];
    kernel.sCe = a.scanBwd.ce;
    kernel.sSeg = a.scanBwd.segments;
    kernel.sItems = a.scanBwd.items;
    launch(ScanKernel.OP_SCAN_BWD4, a.B * nEb * a.scanBwd.threads(), a.scanBwd.threads());
    launch(ScanKernel.OP_SCAN_BWD_REDUCE, BT * 2 * c.stateSize + c.stateSize * ED + ED, 128);
    // Δ = softplus(dt_proj(dbc[:, :R]))
    kernel.eN = BT * ED;
    kernel.eDstOff = a.ddelta;
    kernel.eSrcOff = a.delta;
    launch(MambaKernel.OP_SOFTPLUS_BWD, BT * ED, 256);
    linearBackward(BT, ED, R, GA, a.ddelta, ED, wl.dtProj[l], a.dbc, P, a.ddbc, P, true);
    colsum(BT, ED, GA, a.ddelta, ED, G, wl.dtProjBias[l]);
    if (falcon) {
      partNormsBackward();
    }
    // x_proj
    linearBackward(BT, P, ED, GA, a.ddbc, P, wl.xProj[l], a.xs, ED, a.dxs, ED, true);
    setConv(a, l, false);
    convBackward(a, l, a.dxs);
  }

  /**
   * Mamba-2's mixer backward ({@code SsdMixer.backward}), from dx to dxz over the layer's
   * recomputed forward: out_proj, then {@link SsdRecords#backward}'s passes (the gated norm, the
   * SSD scan by chunks from the last, dδ, d A_log and d D) as one launch, the column sums of the
   * gated norm's weight and dt_bias gradients, and the conv over xBC.
   */
  private void ssdMixerBackward(Layout a, int l) {
    int BT = a.BT;
    int ED = c.intermediateSize;
    int C = c.convChannels();
    int I = c.inProjSize();
    int GA = MambaKernel.SEL_GACT;
    int G = MambaKernel.SEL_G;
    outProjBackward(a, l, a.dbc, a.ddbc);
    int n = SsdRecords.backwardPasses(a);
    ssdBackwardRecords(a);
    passes(forwardSlots() + l * n, n, "ssd backward");
    colsum(BT, ED, GA, a.dpre, ED, G, wl.gatedNorm[l]);
    colsum(BT, c.numHeads, GA, a.dxz + ED + C, I, G, wl.dtProjBias[l]);
    setSsdConv(a, l, false);
    convBackward(a, l, a.dxs);
  }

  /** The B·L of the Mamba-2 backward records in the table, or -1. */
  private long ssdBackwardFor = -1;

  /**
   * Mamba-2: each layer's {@link SsdRecords#backward} records after the forward's, where the decode
   * plan's go (which is then rebuilt when next needed).
   */
  private void ssdBackwardRecords(Layout a) {
    long key = ((long) a.B << 32) | a.L;
    if (key == ssdBackwardFor) {
      return;
    }
    int REC = StepKernel.REC;
    int n = SsdRecords.backwardPasses(a);
    ensureTable((forwardSlots() + c.numLayers * n) * REC);
    for (int l = 0; l < c.numLayers; l++) {
      SsdRecords.backward(kernel.plan, kernel.planF, forwardSlots() + l * n, c, wl, l, a);
    }
    putTable();
    plan = null;
    ssdBackwardFor = key;
  }

  /** dinp (dx) += rmsnorm backward; dweight via column partials (Σ_t dout·inp·rstd). */
  private void rmsnormBackward(
      Layout a, int doutSel, int doutOff, int inSel, int inOff, int wOff, int rstdOff) {
    int D = c.hiddenSize;
    kernel.rnD = D;
    kernel.rnInSel = inSel;
    kernel.rnInOff = inOff;
    kernel.rnWOff = wOff;
    kernel.rnRstdOff = rstdOff;
    kernel.rnDoutSel = doutSel;
    kernel.rnDoutOff = doutOff;
    kernel.rnDinpSel = MambaKernel.SEL_GACT;
    kernel.rnDinpOff = a.dx;
    launch(MambaKernel.OP_RMSNORM_BWD, a.BT * 128, 128);
    kernel.cpRows = a.BT;
    kernel.cpCols = D;
    kernel.cpRowBlock = COLSUM_ROWS;
    kernel.cpMode = 1;
    kernel.cpASel = doutSel;
    kernel.cpAOff = doutOff;
    kernel.cpAStride = D;
    kernel.cpBSel = inSel;
    kernel.cpBOff = inOff;
    kernel.cpBStride = D;
    kernel.cpRstdOff = rstdOff;
    kernel.cpPartOff = 0;
    kernel.cpDstSel = MambaKernel.SEL_G;
    kernel.cpDstOff = wOff;
    int nRb = (a.BT + COLSUM_ROWS - 1) / COLSUM_ROWS;
    launch(MambaKernel.OP_COLSUM_PART, nRb * D, 128);
    launch(MambaKernel.OP_COLSUM_FIN, D, 128);
  }

  /** dst[dstOff + col] += Σ_t src[srcOff + t·stride + col], for a bias gradient. */
  private void colsum(
      int rows, int cols, int srcSel, int srcOff, int stride, int dstSel, int dstOff) {
    kernel.cpRows = rows;
    kernel.cpCols = cols;
    kernel.cpRowBlock = COLSUM_ROWS;
    kernel.cpMode = 0;
    kernel.cpASel = srcSel;
    kernel.cpAOff = srcOff;
    kernel.cpAStride = stride;
    kernel.cpPartOff = 0;
    kernel.cpDstSel = dstSel;
    kernel.cpDstOff = dstOff;
    int nRb = (rows + COLSUM_ROWS - 1) / COLSUM_ROWS;
    launch(MambaKernel.OP_COLSUM_PART, nRb * cols, 128);
    launch(MambaKernel.OP_COLSUM_FIN, cols, 128);
  }

  /**
   * C[m, n] (+)= Σ_k A[m, k]·B[k, n] (+ bias[n]) (then act), addresses as in {@link MambaKernel}'s
   * GEMM fields; M ≤ {@link MambaKernel#GEMV_MAX_M} goes to the GEMV kernel.
   */
  private void matmul(Product p) {
    GemmLaunch.gemm(kernel, this::launch, p);
  }

  private void copy(int dstSel, int dstOff, int srcSel, int srcOff, int n) {
    kernel.eN = n;
    kernel.eDstSel = dstSel;
    kernel.eDstOff = dstOff;
    kernel.eSrcSel = srcSel;
    kernel.eSrcOff = srcOff;
    launch(MambaKernel.OP_COPY, n, 256);
  }

  private void fill(int dstSel, int dstOff, int n) {
    kernel.eN = n;
    kernel.eDstSel = dstSel;
    kernel.eDstOff = dstOff;
    launch(MambaKernel.OP_FILL, n, 256);
  }

  private void launch(int op, int global, int local) {
    if (global <= 0) {
      return;
    }
    kernel.op = op;
    kernel.lmem = localArray(localFloats(op));
    int g = (int) (((long) global + local - 1) / local * local);
    kernel.execute(Range.create(device, g, local));
    launches++;
    if (profile) {
      long ns = KernelTimer.lastKernelNanos(kernel);
      kernelNanos += ns;
      if (opNanos != null) {
        String key =
            op == MambaKernel.OP_GEMM
                ? "gemm " + kernel.gM + "x" + kernel.gN + "x" + kernel.gK
                : "op " + op;
        opNanos.merge(key, ns, Long::sum);
      }
    }
    if (!checked) {
      OpenClDevices.checkRanOnDevice(kernel, device, "the model kernel");
      checked = true;
    }
  }

  /** Threads for a grid-stride op over n elements: at most 8 groups of 256 a compute unit. */
  private int gridStride(int n) {
    return Math.min(n, device.getMaxComputeUnits() * 8 * 256);
  }

  // Local memory per launch: Aparapi sizes a @Local array from the array bound at each execute,
  // so every op gets what it needs rather than the largest op's need (local memory per work-group
  // bounds how many groups share a compute unit).
  private final java.util.Map<Integer, float[]> localArrays = new java.util.HashMap<>();

  private float[] localArray(int floats) {
    return localArrays.computeIfAbsent(floats, float[]::new);
  }

  /** Local floats the op about to launch needs (scans: for the tiling set in the kernel). */
  private int localFloats(int op) {
    switch (op) {
      case MambaKernel.OP_GEMM:
        return MambaKernel.GEMM_LOCAL;
      case MambaKernel.OP_GEMV:
      case MambaKernel.OP_CROSS_ENTROPY:
      case MambaKernel.OP_RMSNORM:
      case MambaKernel.OP_RMSNORM_BWD:
        return MambaKernel.GEMV_ROWS * 128; // GEMV: rows × 128 threads; the rest: a float a thread
      case ScanKernel.OP_SCAN_FWD4:
        return ScanKernel.scanForward4Local(kernel.sCe, kernel.sSeg, c.stateSize);
      case ScanKernel.OP_SCAN_BWD4:
        return ScanKernel.scanBackward4Local(kernel.sCe, kernel.sSeg, c.stateSize);
      default:
        return 1;
    }
  }

  /** How the weights are placed, in words (benchmarks print it beside their numbers). */
  String placement() {
    if (!wl.staged) {
      return "resident (one array)";
    }
    long slabs = Arrays.stream(wl.slabElems).filter(e -> e > 0).count();
    return String.format(
        java.util.Locale.ROOT,
        "staged (%s matrices in %d arrays, %,d bytes in all)",
        wl.format.name().toLowerCase(java.util.Locale.ROOT),
        slabs,
        wl.deviceBytes());
  }

  /** Bytes of the matrices one decode step reads, for benchmarks' bandwidth figures. */
  long stepMatrixBytes() {
    return wl.stepMatrixBytes();
  }

  /** The kernel, for benchmarks. */
  MambaKernel kernel() {
    return kernel;
  }
}
