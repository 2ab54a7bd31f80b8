package org.mambaspark.kernel;

import com.aparapi.device.OpenCLDevice;
import java.util.Arrays;
import java.util.concurrent.locks.ReentrantLock;
import org.mambaspark.model.Architecture;
import org.mambaspark.model.Backend;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.MambaState;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.ModelRunner;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A {@link MambaModel} resident on an OpenCL device, as a {@link ModelRunner}: the same forward,
 * scoring, generation step and training gradient as {@code MambaModel.forward}, {@code Scoring} and
 * {@code Backprop}, as a chain of {@link MambaKernel} launches on one kernel instance ({@link
 * ForwardPlan}, {@link BackwardPlan}, launched through {@link LaunchContext}); decode steps run on
 * a second instance of their passes alone ({@link DecodeKernel}) when the device holds a second
 * copy of the weights. Weights are packed into device arrays ({@link DeviceWeights}) and put once
 * (and again on {@link #reloadWeights}); per call only token ids (and a carried state, {@link
 * DeviceState}) go in, and hidden states, logits, losses or gradients come out. This class checks
 * each call's arguments, lays out its buffers ({@link Layout}) and serializes the calls.
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
  private static final Logger LOG = LoggerFactory.getLogger(GpuModel.class);

  private final GpuBackend backend;
  private final MambaModel model;
  private final MambaConfig c;
  private final OpenCLDevice device;
  private final ReentrantLock lock;
  private final MambaKernel kernel;
  private final DeviceWeights wl;
  private final DeviceState states;
  private final Layout.Tilings tilings;

  /** The launches, their counters and (benchmarks) kernel times. */
  final LaunchContext launch;

  private final ForwardPlan forward;
  private final BackwardPlan backward;
  private boolean closed;

  /**
   * A kernel instance and what launches it, with its own device buffers and state: the whole
   * model's, or the decode step's alone (compared by identity).
   */
  private static final class Program {
    final MambaKernel kernel;
    final LaunchContext launch;
    final DeviceState states;
    final ForwardPlan forward;

    Program(MambaKernel kernel, LaunchContext launch, DeviceState states, ForwardPlan forward) {
      this.kernel = kernel;
      this.launch = launch;
      this.states = states;
      this.forward = forward;
    }
  }

  private final Program whole;

  /**
   * Where decode steps run ({@link #programFor}): made at the first decode step, {@link
   * DecodeKernel}'s program when two copies of the weights take at most half the device, else
   * {@link #whole}.
   */
  private Program decode;

  /** Benchmarks: decode steps on {@link DecodeKernel}'s program (true) or the whole model's. */
  boolean decodeProgram = true;

  /**
   * A decode step whose state the whole program holds (after a prefill) stays there when the state
   * is larger than this (bytes). Moving mamba-130m's B = 64 state (179 MB) to the decode program
   * made the first step 159–175 ms on an H200 (a move through the state's own arrays, two host
   * copies; the move now makes one, not timed on a GPU), where the decode program saves 2.7 ms a
   * step: a generation of the default 32 tokens would lose. At that rate 32 MiB (B ≤ 11 for
   * mamba-130m, B = 1 for mamba-2.8b) costs about 30 ms, which 10–20 steps repay. Benchmarks raise
   * it.
   */
  long decodeMoveLimit = 32L << 20;

  /**
   * Benchmarks: decode steps as one launch of {@link DecodePlan}'s passes (true), or as the
   * forward's launches with L = 1.
   */
  boolean stepPlan = true;

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
    this(backend, model, format, arrayFloats, backend.device.getMaxComputeUnits());
  }

  /**
   * @param planUnits the compute units the launch plans are sized for: the device's (tests give a
   *     large GPU's to run its plans on a small device)
   */
  GpuModel(
      GpuBackend backend,
      MambaModel model,
      DeviceWeights.Format format,
      long arrayFloats,
      int planUnits) {
    this.backend = backend;
    this.model = model;
    this.c = model.config;
    this.device = backend.device;
    this.lock = backend.lock;
    if (c.architecture == Architecture.MAMBA2 && c.stateSize > SsdKernel.SCAN_MAX_N) {
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
    // fitVersion4 and forwardWithChunk fit the scans in the device's local memory (or say why not);
    // each launch gets its op's size (LaunchContext.launch)
    tilings = new Layout.Tilings(c.stateSize, device.getLocalMemSize(), planUnits);
    launch = new LaunchContext(kernel, device, c);
    forward = new ForwardPlan(launch, c, wl, states);
    backward = new BackwardPlan(launch, c, wl, forward);
    kernel.lmem = launch.localArray(1);
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
    whole = new Program(kernel, launch, states, forward);
    lock.lock();
    try {
      packWeights();
    } finally {
      lock.unlock();
    }
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
    while (rows > 1 && new Layout(c, tilings, rows, L, false).actTotal > wl.arrayFloats) {
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
        forward.forwardAll(a, state != null);
        if (hidden != null) {
          forward.readHidden(a, hidden, hiddenOff);
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
    Program p = programFor(B, L, state);
    p.states.fromOtherDevice(state);
    lock.lock();
    try {
      Layout a = prepare(p, ids, B, L, false, state);
      try {
        p.forward.lastLogits(logits, a, state != null, stepPlan);
        finish(p, state);
      } catch (RuntimeException e) {
        throw p.states.lost(state, e);
      }
    } finally {
      lock.unlock();
    }
  }

  @Override
  public void forwardLastArgmax(
      int[] next, float[] logits, int[] ids, int B, int L, MambaState state) {
    // the argmax pass keeps indices as floats in local memory: exact below 2^24
    if (!ForwardPlan.stepPlanRuns(B, L, state != null, stepPlan) || c.vocabSize > 1 << 24) {
      ModelRunner.super.forwardLastArgmax(next, logits, ids, B, L, state);
      return;
    }
    if (next.length < B) {
      throw new IllegalArgumentException(
          "next holds " + next.length + " tokens, expected B = " + B);
    }
    Program p = programFor(B, L, state);
    p.states.fromOtherDevice(state);
    lock.lock();
    try {
      Layout a = prepare(p, ids, B, L, false, state);
      try {
        p.forward.greedyStep(next, a);
        finish(p, state);
      } catch (RuntimeException e) {
        throw p.states.lost(state, e);
      }
    } finally {
      lock.unlock();
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
        forward.losses(a);
        finish(null);
        sum += forward.sumLosses(a, logprobs, b0 * (L - 1));
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
      launch.fill(MambaKernel.SEL_G, 0, (int) wl.wTotal);
      forward.forwardAll(a, false);
      backward.backwardAll(a, (float) scale);
      kernel.get(kernel.out);
      kernel.get(kernel.G);
      finish(null);
      backward.addGradients(grads);
      return forward.sumLosses(a, null, 0);
    } finally {
      lock.unlock();
    }
  }

  @Override
  public void reloadWeights() {
    lock.lock();
    try {
      packWeights();
      if (decode != null && decode != whole) {
        putWeights(decode.kernel);
      }
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
        if (decode != null && decode != whole) {
          decode.states.evict();
          decode.kernel.dispose();
        }
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
      forward.everyHiddenState(hs, logits, a);
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
    putWeights(kernel);
  }

  /** The packed weights (the whole program's host arrays) into k's device buffers. */
  private void putWeights(MambaKernel k) {
    k.put(k.W);
    if (wl.staged) {
      for (int[] s : slabs(k)) {
        if (s.length > 1) {
          k.put(s);
        }
      }
    }
  }

  /**
   * The program a call runs on: a decode step on {@link #decode} unless its state is large and on
   * the whole program ({@link #decodeMoveLimit}), anything else on the whole.
   */
  private Program programFor(int B, int L, MambaState state) {
    if (!decodeProgram
        || !ForwardPlan.stepPlanRuns(B, L, state != null, stepPlan)
        || (state.holder() == this && state.bytes() > decodeMoveLimit)) {
      return whole;
    }
    lock.lock();
    try {
      if (decode == null && !closed) {
        decode = makeDecodeProgram();
      }
      return decode == null ? whole : decode;
    } finally {
      lock.unlock();
    }
  }

  /**
   * {@link DecodeKernel}'s program over the same host weights, put into buffers of its own, with a
   * state buffer of its own (after a prefill on the whole program, the first step brings the state
   * over: {@link DeviceState#pair}); the whole program when the two copies of the weights would
   * take more than half the device.
   */
  private Program makeDecodeProgram() {
    long bytes = wl.deviceBytes();
    long mem = device.getGlobalMemSize();
    if (2 * bytes > mem / 2) {
      LOG.info(
          "decode steps run on the model's whole kernel program: a second copy of the weights"
              + " ({} MB) for the decode step's own program would leave less than half of {} MB",
          bytes >> 20,
          mem >> 20);
      return whole;
    }
    DecodeKernel k = new DecodeKernel();
    k.setExplicit(true);
    k.W = kernel.W;
    k.S0 = kernel.S0;
    k.S1 = kernel.S1;
    k.S2 = kernel.S2;
    k.S3 = kernel.S3;
    k.S4 = kernel.S4;
    k.S5 = kernel.S5;
    k.S6 = kernel.S6;
    k.S7 = kernel.S7;
    k.wFmt = kernel.wFmt;
    k.wPow2Off = kernel.wPow2Off;
    k.embSlab = kernel.embSlab;
    DeviceState[] st = new DeviceState[1];
    MambaState.Holder holder =
        s -> {
          lock.lock();
          try {
            st[0].download(s);
          } finally {
            lock.unlock();
          }
        };
    st[0] = new DeviceState(k, c, holder);
    DeviceState.pair(states, st[0]);
    LaunchContext lc = new LaunchContext(k, device, c);
    lc.profile = launch.profile;
    k.lmem = lc.localArray(1);
    putWeights(k);
    LOG.info(
        "decode steps run on a kernel program of their own: {} MB more device memory for a second"
            + " copy of the weights",
        bytes >> 20);
    return new Program(k, lc, st[0], new ForwardPlan(lc, c, wl, st[0]));
  }

  /** Benchmarks: the launches of decode steps (the whole program's until the first step). */
  LaunchContext stepLaunch() {
    return decode == null ? launch : decode.launch;
  }

  private int[][] slabs() {
    return slabs(kernel);
  }

  private static int[][] slabs(MambaKernel k) {
    return new int[][] {k.S0, k.S1, k.S2, k.S3, k.S4, k.S5, k.S6, k.S7};
  }

  // ---- per call

  /**
   * Checks a call's arguments, lays out its buffers, puts its ids, and its state unless the device
   * holds it already.
   */
  private Layout prepare(int[] ids, int B, int L, boolean training, MambaState state) {
    return prepare(whole, ids, B, L, training, state);
  }

  private Layout prepare(Program p, int[] ids, int B, int L, boolean training, MambaState state) {
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
    Layout a = new Layout(c, tilings, B, L, training);
    a.bind(p.kernel, wl.wTotal, ids);
    if (state != null) {
      p.states.upload(state);
    }
    return a;
  }

  private void finish(MambaState state) {
    finish(whole, state);
  }

  private void finish(Program p, MambaState state) {
    if (!p.kernel.isRunningCL()) {
      throw new IllegalStateException(
          "Aparapi left OpenCL during this call (now on "
              + p.kernel.getTargetDevice()
              + "): the results were not computed on "
              + OpenClDevices.describe(device));
    }
    if (state != null) {
      p.states.hold(state);
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
