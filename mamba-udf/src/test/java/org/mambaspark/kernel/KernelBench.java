package org.mambaspark.kernel;

import com.aparapi.Range;
import com.aparapi.device.OpenCLDevice;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.MambaState;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.Sampler;
import org.mambaspark.model.Scoring;
import org.mambaspark.model.Workspace;
import org.mambaspark.ops.Parallel;
import org.mambaspark.ops.SelectiveScan;

/**
 * Benchmarks of the GPU path (the tables in docs/gpu.md), on an H100 or H200 (see CONTRIBUTING.md):
 *
 * <pre>
 *   mvn -q package -DskipTests &amp;&amp; deploy/gpu-host/prepare.sh        (here)
 *   source .gpu/env.sh &amp;&amp; java -cp '.gpu/lib/*' org.mambaspark.kernel.KernelBench all   (device)
 * </pre>
 *
 * <p>Benchmarks (key=value arguments override the defaults shown):
 *
 * <pre>
 *   all                                  the whole table below, in one run
 *   scans                                the three scan sizes, forward and backward
 *   scan-fwd  B=8 L=2048 ED=1536 N=16 [ce S I: DeviceScan's default for the shape] [scan=4
 *             scanMin=1: versions 4 and 1; scanMin=4: 4 only] [check=false: skip the CPU check]
 *   scan-bwd  the same keys (after a forward saving chunk states; versions 4 and 1) [parts=1,4,8:
 *             rows split into parts across work-groups, version 4; gradients checked against the
 *             first]
 *   scan-sweep B=8 L=2048 ED=1536 N=16 [only=16x16,4x32,...]   version 4 over tilings
 *   sgemm     M=16384 N=3072 K=768       C = A·Bᵀ, TFLOP/s
 *   sgemm-130m                           mamba-130m's five products at B·L = 16384
 *   forward   preset=mamba-130m B=8 L=2048   hidden states, and scoring (lm_head + loss)
 *   train     preset=mamba-130m B=8 L=2048   forward + backward (all gradients back on the host)
 *   generate  preset=mamba-130m prompt=128 steps=64 B=1   one-token step latency, B sequences
 *             (plan=false: the step as the forward's launches instead of one launch of passes;
 *             greedy=host: the logits read back and the next tokens picked on the host, untimed,
 *             instead of the argmax pass on the device)
 *             (forward, train, generate: weights=fp32|bf16; preset=falcon-mamba-7b for 7B sizes)
 *   cpu-forward preset=mamba2-130m B=1 L=512 threads=2   the CPU engine's scoring pass (every
 *             token's logits and the loss) beside the GPU's: run under taskset with the anchor's cores
 *   launch-cost launches=2000   host time per launch: Aparapi's floor (a kernel of one array and
 *             one int), the same with eight more arrays, and the model's kernel (a one-element fill)
 *   bf16-loss model=models/pycode-bytes corpus=data/sample.jsonl   the mean loss of a JSON-lines
 *             corpus's "text" documents with fp32 weights on the device, then bf16 (the change)
 *   common:   runs=30 warmup=5 device=0 cpu=false (cpu=true admits OpenCL CPU devices: PoCL)
 *             profile=false (no OpenCL event times: end-to-end without their cost)
 * </pre>
 *
 * <p>Every line names the device and whether the launches ran as OpenCL on it: Aparapi falls back
 * to a Java thread pool silently, and such a number must never pass for a GPU one (the benchmark
 * stops instead). Kernel time is OpenCL's event time of the kernels alone (Aparapi profiling,
 * switched on here); "launch+kernel" is the host's wall time around the launches (execute is
 * synchronous); end-to-end adds the transfers (and for the model, packing ids and unpacking
 * results). Each is the median of {@code runs} after {@code warmup} runs. Weights are random
 * (mamba-130m's shapes), which changes no timing.
 */
public final class KernelBench {
  private final Map<String, String> opt;
  private final OpenCLDevice device;
  private final List<String> table = new ArrayList<>();

  private KernelBench(Map<String, String> opt, OpenCLDevice device) {
    this.opt = opt;
    this.device = device;
  }

  public static void main(String[] args) {
    // before any Aparapi class initializes: OpenCL event times for the kernel-only numbers, unless
    // profile=false (end-to-end times without the profiling's own cost; kernel columns then "-")
    boolean profile = !java.util.Arrays.asList(args).contains("profile=false");
    System.setProperty("com.aparapi.enableProfiling", Boolean.toString(profile));
    if (args.length == 0) {
      System.out.println(
          "usage: KernelBench all|scans|scan-fwd|scan-bwd|scan-sweep|sgemm|sgemm-130m|forward|train|"
              + "generate [key=value ...]  (see the class comment)");
      System.exit(2);
    }
    Map<String, String> opt = new LinkedHashMap<>();
    for (int i = 1; i < args.length; i++) {
      int eq = args[i].indexOf('=');
      if (eq <= 0) {
        throw new IllegalArgumentException("arguments are key=value, got '" + args[i] + "'");
      }
      opt.put(args[i].substring(0, eq), args[i].substring(eq + 1));
    }
    boolean allowCpu = Boolean.parseBoolean(opt.getOrDefault("cpu", "false"));
    System.setProperty(OpenClDevices.ALLOW_CPU_PROPERTY, Boolean.toString(allowCpu));
    System.out.println("OpenCL devices: " + OpenClDevices.describeAll());
    List<OpenCLDevice> ds = OpenClDevices.usable(allowCpu);
    int index = Integer.parseInt(opt.getOrDefault("device", "0"));
    if (ds.size() <= index) {
      System.out.println(
          "no usable OpenCL device "
              + index
              + (allowCpu ? "" : " (GPUs only; cpu=true admits CPU devices)")
              + ": nothing to benchmark");
      System.exit(1);
    }
    OpenCLDevice d = ds.get(index);
    System.out.println("benchmarking on " + OpenClDevices.describe(d));
    KernelBench b = new KernelBench(opt, d);
    String what = args[0];
    switch (what) {
      case "all":
        b.all();
        break;
      case "scans":
        b.scans();
        break;

      case "scan-fwd":
        b.scanForward(b.i("B", 8), b.i("L", 2048), b.i("ED", 1536), b.i("N", 16), b.tiling(true));
        break;
      case "scan-bwd":
        b.scanBackward(b.i("B", 8), b.i("L", 2048), b.i("ED", 1536), b.i("N", 16), b.tiling(false));
        break;
      case "scan-sweep":
        b.scanSweep(b.i("B", 8), b.i("L", 2048), b.i("ED", 1536), b.i("N", 16));
        break;
      case "sgemm":
        b.sgemm("sgemm", b.i("M", 16384), b.i("N", 3072), b.i("K", 768));
        break;
      case "sgemm-130m":
        b.sgemm130m();
        break;
      case "forward":
        b.forward(b.preset(), b.i("B", 8), b.i("L", 2048));
        break;
      case "train":
        b.train(b.preset(), b.i("B", 8), b.i("L", 2048));
        break;
      case "generate":
        b.generate(b.preset(), b.i("prompt", 128), b.i("steps", 64), b.i("B", 1));
        break;
      case "cpu-forward":
        b.cpuForward(b.preset(), b.i("B", 1), b.i("L", 512));
        break;
      case "launch-cost":
        b.launchCost(b.i("launches", 2000));
        break;
      case "registers":
        b.registers();
        break;
      case "bf16-loss":
        b.bf16Loss(
            java.nio.file.Paths.get(b.opt.getOrDefault("model", "models/pycode-bytes")),
            java.nio.file.Paths.get(b.opt.getOrDefault("corpus", "data/sample.jsonl")));
        break;
      default:
        throw new IllegalArgumentException("unknown benchmark '" + what + "'");
    }
    b.printTable();
  }

  private void all() {
    MambaConfig p = MambaConfig.preset("mamba-130m");
    scans();
    sgemm130m();
    forward(p, 8, 2048);
    train(p, i("trainB", 8), 2048);
    generate(p, 128, 64, 1);
    generate(p, 128, 64, 64);
  }

  // ---- scan

  /** The three reference scan sizes (docs/gpu.md), forward and backward, default tilings. */
  private void scans() {
    int[][] sizes = {{8, 2048, 1536, 16}, {1, 16384, 1536, 16}, {4, 4096, 5120, 16}};
    for (int[] s : sizes) {
      scanForward(s[0], s[1], s[2], s[3], defaultTiling(true, s[0], s[2]));
      scanBackward(s[0], s[1], s[2], s[3], defaultTiling(false, s[0], s[2]));
    }
  }

  /**
   * The scan versions to time with this tiling: the one asked for (scan=), then 1 unless scanMin=4.
   */
  private int[] versions(ScanTiling t) {
    int top = DeviceScan.version(t, i("scan", DeviceScan.VERSION));
    return top == 4 && i("scanMin", 1) <= 1 ? new int[] {4, 1} : new int[] {top};
  }

  private void scanForward(int B, int L, int ED, int N, ScanTiling t) {
    for (int v : versions(t)) {
      scanForward(B, L, ED, N, t, v);
    }
  }

  private void scanForward(int B, int L, int ED, int N, ScanTiling t, int version) {
    int R = 48;
    try (DeviceScan s =
        new DeviceScan(device, B, L, ED, N, R, R + 2 * N, ED, t, null, false, version)) {
      s.uploadRandom(1);
      s.profile = true;
      long[] kernel = new long[runs()];
      long[] wall = new long[runs()];
      for (int r = -warmup(); r < runs(); r++) {
        s.resetState();
        s.kernelNanos = 0;
        long t0 = System.nanoTime();
        s.forward(false);
        long t1 = System.nanoTime();
        if (r >= 0) {
          kernel[r] = s.kernelNanos;
          wall[r] = t1 - t0;
        }
      }
      checkOpenCl(s.kernel, "scan forward");
      long[] e2e = new long[Math.max(3, runs() / 5)];
      for (int r = -1; r < e2e.length; r++) {
        long t0 = System.nanoTime();
        s.kernel.put(s.kernel.act).put(s.kernel.W).put(s.kernel.state);
        s.resetState();
        s.forward(false);
        s.kernel.get(s.kernel.act).get(s.kernel.state);
        if (r >= 0) {
          e2e[r] = System.nanoTime() - t0;
        }
      }
      boolean check = B * (long) L * ED <= 64L << 20 && !"false".equals(opt.get("check"));
      String err = check ? checkScan(s, L, ED, N, R) : "not checked";
      row(
          "scan fwd v" + version,
          String.format(Locale.ROOT, "B=%d L=%d ED=%d N=%d", B, L, ED, N),
          t.toString(),
          ms(kernel),
          ms(wall),
          ms(e2e),
          "sequence 0 vs CPU: " + err);
    }
  }

  /** y of sequence 0 against the CPU scan on the same inputs (read back from the device). */
  private static String checkScan(DeviceScan s, int L, int ED, int N, int R) {
    int P = R + 2 * N;
    float[] act = s.kernel.act;
    float[] u = Arrays.copyOfRange(act, s.oU, s.oU + L * ED);
    float[] dt = Arrays.copyOfRange(act, s.oDt, s.oDt + L * ED);
    float[] dbc = Arrays.copyOfRange(act, s.oDbc, s.oDbc + L * P);
    float[] z = Arrays.copyOfRange(act, s.oZ, s.oZ + L * ED);
    float[] A = new float[N * ED];
    for (int i = 0; i < N * ED; i++) {
      A[i] = s.kernel.W[i] / ScanKernel.LOG2E;
    }
    float[] D = Arrays.copyOfRange(s.kernel.W, N * ED, N * ED + ED);
    float[] y = new float[L * ED];
    float[] h = new float[N * ED];
    SelectiveScan.scanForward(y, h, u, dt, A, dbc, R, D, z, 0, ED, 1, L, ED, N);
    float[] got = Arrays.copyOfRange(act, s.oY, s.oY + L * ED);
    return String.format(Locale.ROOT, "rel err %.1e", relErr(got, y));
  }

  private void scanBackward(int B, int L, int ED, int N, ScanTiling t) {
    for (int v : versions(t)) {
      scanBackward(B, L, ED, N, t, v);
    }
  }

  private void scanBackward(int B, int L, int ED, int N, ScanTiling t, int version) {
    float[] whole = null;
    for (String ps : opt.getOrDefault("parts", "1").split(",", -1)) {
      int parts = Integer.parseInt(ps);
      if (parts == 1 || version == 4) {
        whole = scanBackward(B, L, ED, N, t, version, parts, whole);
      }
    }
  }

  /**
   * The backward with rows in {@code parts} parts (scan-bwd parts=1,4,8): its gradients, compared
   * with {@code whole}'s (the first run's) when given.
   */
  private float[] scanBackward(
      int B, int L, int ED, int N, ScanTiling t, int version, int parts, float[] whole) {
    int R = 48;
    ScanTiling f = DeviceScan.forwardWithChunk(t, N, device.getLocalMemSize(), version);
    try (DeviceScan s =
        new DeviceScan(device, B, L, ED, N, R, R + 2 * N, ED, f, t, true, version)) {
      s.setBackwardParts(parts);
      s.uploadRandom(1);
      s.uploadRandomGradient(2);
      s.forward(true);
      s.profile = true;
      long[] kernel = new long[runs()];
      long[] wall = new long[runs()];
      for (int r = -warmup(); r < runs(); r++) {
        s.kernelNanos = 0;
        long t0 = System.nanoTime();
        s.backward();
        long t1 = System.nanoTime();
        if (r >= 0) {
          kernel[r] = s.kernelNanos;
          wall[r] = t1 - t0;
        }
      }
      checkOpenCl(s.kernel, "scan backward");
      long[] e2e = new long[Math.max(3, runs() / 5)];
      for (int r = -1; r < e2e.length; r++) {
        long t0 = System.nanoTime();
        s.kernel.put(s.kernel.act).put(s.kernel.W).put(s.kernel.gact);
        s.resetState();
        s.forward(true);
        s.backward();
        s.kernel.get(s.kernel.gact);
        if (r >= 0) {
          e2e[r] = System.nanoTime() - t0;
        }
      }
      float[] grads = s.kernel.gact.clone();
      row(
          "scan bwd v" + s.backwardVersion(),
          String.format(Locale.ROOT, "B=%d L=%d ED=%d N=%d", B, L, ED, N),
          t
              + (parts > 1
                  ? ", rows in " + parts + " parts (+ carries + reduction)"
                  : " (+ reduction)"),
          ms(kernel),
          ms(wall),
          ms(e2e),
          "end-to-end includes the forward"
              + (whole == null
                  ? ""
                  : String.format(
                      Locale.ROOT,
                      "; gradients vs the first run: rel err %.1e",
                      relErr(grads, whole))));
      return whole == null ? grads : whole;
    }
  }

  /** Version 4's tilings (I = 4) forward and backward, for picking the defaults. */
  private void scanSweep(int B, int L, int ED, int N) {
    int[][] tilings = {
      {16, 16}, {8, 32}, {4, 64}, {4, 32}, {2, 128}, {16, 4}, {8, 4}, {16, 2}, {4, 16}, {32, 2}
    };
    int v = i("scan", DeviceScan.VERSION);
    String only = opt.getOrDefault("only", "");
    for (int[] c : tilings) {
      String key = c[0] + "x" + c[1];
      if (!only.isEmpty() && !java.util.Arrays.asList(only.split(",")).contains(key)) {
        continue;
      }
      ScanTiling t = new ScanTiling(c[0], c[1], 4);
      if (t.threads() > device.getMaxWorkGroupSize()) {
        continue;
      }
      if (4L * DeviceScan.forwardLocal(t, N, v) <= device.getLocalMemSize()) {
        scanForward(B, L, ED, N, t, v);
      }
      if (4L * DeviceScan.backwardLocal(t, N, v) <= device.getLocalMemSize()) {
        scanBackward(B, L, ED, N, t, v);
      }
    }
  }

  // ---- SGEMM

  private void sgemm130m() {
    int BT = 16384;
    sgemm("in_proj", BT, 3072, 768);
    sgemm("x_proj", BT, 80, 1536);
    sgemm("dt_proj", BT, 1536, 48);
    sgemm("out_proj", BT, 768, 1536);
    sgemm("lm_head block", 1280, 50280, 768);
  }

  private void sgemm(String name, int M, int N, int K) {
    try (DeviceOps ops = new DeviceOps(device)) {
      ops.gemmPrepare(M, N, K, 5);
      ops.profile = true;
      long[] kernel = new long[runs()];
      long[] wall = new long[runs()];
      for (int r = -warmup(); r < runs(); r++) {
        ops.kernelNanos = 0;
        long t0 = System.nanoTime();
        ops.gemmLaunch();
        long t1 = System.nanoTime();
        if (r >= 0) {
          kernel[r] = ops.kernelNanos;
          wall[r] = t1 - t0;
        }
      }
      checkOpenCl(ops.kernel, "SGEMM");
      long[] e2e = new long[Math.max(3, runs() / 5)];
      for (int r = -1; r < e2e.length; r++) {
        long t0 = System.nanoTime();
        ops.kernel.put(ops.kernel.act).put(ops.kernel.W);
        ops.gemmLaunch();
        ops.kernel.get(ops.kernel.act);
        if (r >= 0) {
          e2e[r] = System.nanoTime() - t0;
        }
      }
      // spot check 64 entries against a double dot product
      SplittableRandom rnd = new SplittableRandom(9);
      double worst = 0;
      float[] a = ops.kernel.act;
      float[] w = ops.kernel.W;
      for (int s = 0; s < 64; s++) {
        int m = rnd.nextInt(M);
        int n = rnd.nextInt(N);
        double ref = 0;
        double mag = 0;
        for (int k = 0; k < K; k++) {
          ref += (double) a[m * K + k] * w[n * K + k];
          mag += Math.abs((double) a[m * K + k] * w[n * K + k]);
        }
        worst = Math.max(worst, Math.abs(a[M * K + m * N + n] - ref) / Math.max(mag, 1e-30));
      }
      double flop = 2.0 * M * N * K;
      double kMed = median(kernel);
      String tf =
          kMed > 0
              ? String.format(Locale.ROOT, "%.2f TFLOP/s (kernel)", flop / kMed / 1e9)
              : String.format(Locale.ROOT, "%.2f TFLOP/s (wall)", flop / median(wall) / 1e9);
      row(
          "sgemm " + name,
          String.format(Locale.ROOT, "M=%d N=%d K=%d", M, N, K),
          "128x128x8, 8x8/thread, double-buffered",
          ms(kernel),
          ms(wall),
          ms(e2e),
          tf + String.format(Locale.ROOT, ", spot check %.1e", worst));
    }
  }

  // ---- launch cost

  /** Aparapi's floor: one array, one int. */
  static final class FloorKernel extends com.aparapi.Kernel {
    float[] a = new float[1];
    int n;

    @Override
    public void run() {
      int i = getGlobalId();
      if (i < n) {
        a[i] = 0f;
      }
    }
  }

  /** The floor plus eight int arrays (as the model kernel's weight slabs). */
  static final class SlabsKernel extends com.aparapi.Kernel {
    float[] a = new float[1];
    int[] s0 = new int[1];
    int[] s1 = new int[1];
    int[] s2 = new int[1];
    int[] s3 = new int[1];
    int[] s4 = new int[1];
    int[] s5 = new int[1];
    int[] s6 = new int[1];
    int[] s7 = new int[1];
    int n;

    @Override
    public void run() {
      int i = getGlobalId();
      if (i < n) {
        a[i] = s0[0] + s1[0] + s2[0] + s3[0] + s4[0] + s5[0] + s6[0] + s7[0];
      }
    }
  }

  private void launchCost(int launches) {
    FloorKernel floor = new FloorKernel();
    SlabsKernel slabs = new SlabsKernel();
    Range r = Range.create(device, 256, 256);
    for (com.aparapi.Kernel k : new com.aparapi.Kernel[] {floor, slabs}) {
      k.setExplicit(true);
      if (k == floor) {
        floor.put(floor.a);
      } else {
        slabs.put(slabs.a).put(slabs.s0).put(slabs.s1).put(slabs.s2).put(slabs.s3);
        slabs.put(slabs.s4).put(slabs.s5).put(slabs.s6).put(slabs.s7);
      }
      double us = perLaunchMicros(launches, () -> k.execute(r));
      checkOpenCl(k, "launch cost");
      row(
          "launch, " + (k == floor ? "1 array + 1 int" : "9 arrays + 1 int"),
          launches + " launches",
          "host time per launch (execute returns when the kernel has run)",
          "-",
          "-",
          String.format(Locale.ROOT, "%.1f µs", us),
          "");
      k.dispose();
    }
    try (GpuModel g = model(MambaConfig.preset("mamba-130m"))) {
      MambaKernel k = g.kernel();
      k.op = MambaKernel.OP_FILL;
      k.eN = 1;
      k.eDstSel = MambaKernel.SEL_ACT;
      k.eDstOff = 0;
      double us = perLaunchMicros(launches, () -> k.execute(r));
      checkOpenCl(k, "launch cost");
      row(
          "launch, the model kernel",
          launches + " launches",
          "a one-element fill with every field of the model's kernel",
          "-",
          "-",
          String.format(Locale.ROOT, "%.1f µs", us),
          "");
      // passes of one launch, as a decode step runs, on the whole program and on the decode
      // step's own, whose arguments are only the step's
      passesCost(k, "the model kernel", "", launches, r);
      DecodeKernel d = new DecodeKernel();
      d.setExplicit(true);
      passesCost(d, "DecodeKernel", " on the decode step's own program", launches, r);
      d.dispose();
    }
  }

  /** Host time a pass of one launch of 171 empty passes (kind 0 does nothing) on kernel k. */
  private void passesCost(MambaKernel k, String name, String where, int launches, Range r) {
    int passes = 171;
    k.op = StepKernel.OP_STEP;
    k.planOff = 0;
    k.plan = new int[passes * StepKernel.REC];
    k.planF = new float[passes * StepKernel.REC];
    k.put(k.plan).put(k.planF);
    int n = Math.max(1, launches / 20);
    double perLaunch = perLaunchMicros(n, () -> k.execute(r, passes));
    checkOpenCl(k, "launch cost");
    row(
        "launch, " + name + ", " + passes + " passes",
        n + " launches",
        "host time per pass of one launch of empty passes (a decode step's shape)" + where,
        "-",
        "-",
        String.format(Locale.ROOT, "%.2f µs", perLaunch / passes),
        String.format(Locale.ROOT, "%.0f µs a launch", perLaunch));
  }

  private static double perLaunchMicros(int launches, Runnable launch) {
    for (int i = 0; i < 200; i++) {
      launch.run();
    }
    long best = Long.MAX_VALUE;
    for (int rep = 0; rep < 3; rep++) {
      long t0 = System.nanoTime();
      for (int i = 0; i < launches; i++) {
        launch.run();
      }
      best = Math.min(best, System.nanoTime() - t0);
    }
    return best / 1e3 / launches;
  }

  // ---- the model

  private GpuModel model(MambaConfig c) {
    GpuBackend backend =
        (GpuBackend) GpuBackend.open(Integer.parseInt(opt.getOrDefault("device", "0")));
    long t0 = System.nanoTime();
    MambaModel m = new MambaModel(Initialization.initialize(c, 1));
    GpuModel g =
        new GpuModel(backend, m, DeviceWeights.Format.parse(weights()), DeviceWeights.ARRAY_FLOATS);
    System.out.printf(
        Locale.ROOT,
        "model %s: %,d parameters, %s weights, %s on the device, %.1f s to make and upload%n",
        name(c),
        DeviceWeights.parameters(c),
        weights(),
        g.placement(),
        (System.nanoTime() - t0) / 1e9);
    return g;
  }

  private static int[] tokens(int n, int V, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    int[] ids = new int[n];
    for (int i = 0; i < n; i++) {
      ids[i] = r.nextInt(V);
    }
    return ids;
  }

  private void forward(MambaConfig c, int B, int L) {
    int[] ids = tokens(B * L, c.vocabSize, 3);
    try (GpuModel g = model(c)) {
      float[] hidden = new float[B * L * c.hiddenSize];
      int runs = Math.max(3, runs() / 3);
      long[] kernel = new long[runs];
      long[] e2e = new long[runs];
      for (int r = -Math.min(2, warmup()); r < runs; r++) {
        g.launch.profile = true;
        g.launch.kernelNanos = 0;
        long t0 = System.nanoTime();
        g.forward(hidden, ids, B, L, null);
        long t1 = System.nanoTime();
        if (r >= 0) {
          kernel[r] = g.launch.kernelNanos;
          e2e[r] = t1 - t0;
        }
      }
      checkOpenCl(g.kernel(), "model forward");
      breakdown(g.launch, () -> g.forward(hidden, ids, B, L, null));
      long launches = launchesPerCall(g.launch, () -> g.forward(hidden, ids, B, L, null));
      row(
          "forward " + name(c),
          "B=" + B + " L=" + L,
          launches + " launches, hidden out",
          ms(kernel),
          "-",
          ms(e2e),
          tokensPerSecond(B * L, kernel, e2e));
      long[] sk = new long[runs];
      long[] se = new long[runs];
      for (int r = -1; r < runs; r++) {
        g.launch.kernelNanos = 0;
        long t0 = System.nanoTime();
        g.nextTokenLossSum(null, ids, B, L);
        long t1 = System.nanoTime();
        if (r >= 0) {
          sk[r] = g.launch.kernelNanos;
          se[r] = t1 - t0;
        }
      }
      row(
          "score " + name(c),
          "B=" + B + " L=" + L,
          "forward + lm_head + loss",
          ms(sk),
          "-",
          ms(se),
          tokensPerSecond(B * L, sk, se));
    }
  }

  /**
   * The CPU engine's scoring pass (backbone, lm_head logits for every position, loss) with {@code
   * threads} threads, as {@code bin/mamba bench forward} times it: the engine on the GPU host's
   * CPU, where an anchor on the same cores can run in the same call.
   */
  private void cpuForward(MambaConfig c, int B, int L) {
    Parallel.setThreads(i("threads", 2));
    MambaModel m = new MambaModel(Initialization.initialize(c, 1));
    int[] ids = tokens(B * L, c.vocabSize, 3);
    Workspace ws = new Workspace(c);
    int runs = Math.max(3, runs() / 3);
    long[] e2e = new long[runs];
    for (int r = -Math.min(2, warmup()); r < runs; r++) {
      long t0 = System.nanoTime();
      Scoring.meanNextTokenLoss(m, ws, ids, B, L);
      if (r >= 0) {
        e2e[r] = System.nanoTime() - t0;
      }
    }
    row(
        "cpu forward " + name(c),
        "B=" + B + " L=" + L,
        Parallel.threads() + " threads, logits + loss",
        "-",
        "-",
        ms(e2e),
        tokensPerSecond(B * L, new long[0], e2e));
  }

  /**
   * The corpus's mean next-token loss per token, each document scored alone, with the model's
   * weights on the device as fp32 and as bf16.
   */
  private void bf16Loss(java.nio.file.Path modelDir, java.nio.file.Path corpus) {
    MambaModel m = new MambaModel(org.mambaspark.io.Checkpoint.load(modelDir));
    org.mambaspark.tokenizer.Tokenizer tok =
        org.mambaspark.tokenizer.Tokenizers.forModel(modelDir)
            .orElseThrow(() -> new IllegalArgumentException(modelDir + " has no tokenizer"));
    List<int[]> docs = new ArrayList<>();
    com.fasterxml.jackson.databind.ObjectMapper json =
        new com.fasterxml.jackson.databind.ObjectMapper();
    try {
      for (String line : java.nio.file.Files.readAllLines(corpus)) {
        if (!line.isBlank()) {
          int[] ids = tok.encode(json.readTree(line).get("text").asText());
          if (ids.length >= 2) {
            docs.add(ids);
          }
        }
      }
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    GpuBackend backend =
        (GpuBackend) GpuBackend.open(Integer.parseInt(opt.getOrDefault("device", "0")));
    double[] loss = new double[2];
    long tokens = 0;
    for (int f = 0; f < 2; f++) {
      DeviceWeights.Format format = f == 0 ? DeviceWeights.Format.FP32 : DeviceWeights.Format.BF16;
      try (GpuModel g = new GpuModel(backend, m, format, DeviceWeights.ARRAY_FLOATS)) {
        tokens = 0;
        for (int[] ids : docs) {
          loss[f] += g.nextTokenLossSum(null, ids, 1, ids.length);
          tokens += ids.length - 1;
        }
        checkOpenCl(g.kernel(), "bf16-loss");
      }
      loss[f] /= tokens;
    }
    System.out.printf(
        Locale.ROOT,
        "bf16-loss %s on %s (%d documents, %,d tokens): fp32 %.6f, bf16 %.6f nats/token,"
            + " change %+.4f%% (%s)%n",
        modelDir,
        corpus,
        docs.size(),
        tokens,
        loss[0],
        loss[1],
        100 * (loss[1] - loss[0]) / loss[0],
        OpenClDevices.describe(device));
  }

  /** Kernel time of one call per op, largest first (where the time goes). */
  private static void breakdown(LaunchContext launch, Runnable call) {
    if (!Boolean.getBoolean("com.aparapi.enableProfiling")) {
      return;
    }
    launch.profile = true;
    launch.opNanos = new java.util.HashMap<>();
    call.run();
    java.util.Map<String, Long> m = launch.opNanos;
    launch.opNanos = null;
    long total = m.values().stream().mapToLong(Long::longValue).sum();
    m.entrySet().stream()
        .sorted((a, b) -> Long.compare(b.getValue(), a.getValue()))
        .forEach(
            e ->
                System.out.printf(
                    Locale.ROOT,
                    "  %-24s %9.3f ms  %5.1f%%%n",
                    opName(e.getKey()),
                    e.getValue() / 1e6,
                    100.0 * e.getValue() / total));
  }

  /** "op 14" as its constant's name (OP_CONV → conv); GEMM keys are already named by shape. */
  private static String opName(String key) {
    if (!key.startsWith("op ")) {
      return key;
    }
    int op = Integer.parseInt(key.substring(3));
    for (Class<?> k : new Class<?>[] {MambaKernel.class, ScanKernel.class}) {
      for (java.lang.reflect.Field f : k.getDeclaredFields()) {
        if (f.getName().startsWith("OP_") && f.getType() == int.class) {
          try {
            if (f.getInt(null) == op) {
              return f.getName().substring(3).toLowerCase(Locale.ROOT);
            }
          } catch (IllegalAccessException e) {
            return key;
          }
        }
      }
    }
    return key;
  }

  private void train(MambaConfig c, int B, int L) {
    int[] ids = tokens(B * L, c.vocabSize, 4);
    try (GpuModel g = model(c)) {
      MambaWeights grads = MambaWeights.zerosLike(g.model().weights);
      int runs = Math.max(3, runs() / 6);
      long[] kernel = new long[runs];
      long[] e2e = new long[runs];
      for (int r = -1; r < runs; r++) {
        g.launch.profile = true;
        g.launch.kernelNanos = 0;
        long t0 = System.nanoTime();
        g.forwardBackward(grads, ids, B, L, 1.0 / (B * (L - 1)));
        long t1 = System.nanoTime();
        if (r >= 0) {
          kernel[r] = g.launch.kernelNanos;
          e2e[r] = t1 - t0;
        }
      }
      checkOpenCl(g.kernel(), "training step");
      breakdown(g.launch, () -> g.forwardBackward(grads, ids, B, L, 1.0 / (B * (L - 1))));
      row(
          "train step " + name(c),
          "B=" + B + " L=" + L,
          "fwd + recompute + bwd, grads out",
          ms(kernel),
          "-",
          ms(e2e),
          tokensPerSecond(B * L, kernel, e2e));
    }
  }

  /** B sequences decoded together, one step per token. */
  private void generate(MambaConfig c, int prompt, int steps, int B) {
    int V = c.vocabSize;
    int[] ids = tokens(B * prompt, V, 5);
    try (GpuModel g = model(c)) {
      g.stepPlan = !"false".equals(opt.get("plan"));
      // decode=whole: the steps on the whole model's program; decode=own: on DecodeKernel's, the
      // state moved there after the prefill whatever its size
      g.decodeProgram = !"whole".equals(opt.get("decode"));
      if ("own".equals(opt.get("decode"))) {
        g.decodeMoveLimit = Long.MAX_VALUE;
      }
      // greedy=host: the step's logits come back and the host picks (outside the timed call)
      boolean hostArgmax = "host".equals(opt.get("greedy"));
      float[] logits = new float[B * V];
      long[] kernel = new long[steps];
      long[] e2e = new long[steps];
      long[] prefill = new long[2];
      MambaState last = null;
      for (int rep = -1; rep < 1; rep++) {
        MambaState state = new MambaState(c, B);
        last = state;
        g.launch.profile = true;
        g.stepLaunch().profile = true; // made by the first rep's first step
        g.launch.kernelNanos = 0;
        long t0 = System.nanoTime();
        g.forwardLastLogits(logits, ids, B, prompt, state);
        prefill[0] = g.launch.kernelNanos;
        prefill[1] = System.nanoTime() - t0;
        int[] step = new int[B];
        int[] next = new int[B];
        for (int s = 0; s < steps; s++) {
          if (hostArgmax || s == 0) { // the first step's tokens come from the prefill's logits
            for (int b = 0; b < B; b++) {
              next[b] = Sampler.argmax(logits, b * V, V);
            }
          }
          System.arraycopy(next, 0, step, 0, B);
          g.stepLaunch().kernelNanos = 0;
          long t1 = System.nanoTime();
          if (hostArgmax) {
            g.forwardLastLogits(logits, step, B, 1, state);
          } else {
            g.forwardLastArgmax(next, logits, step, B, 1, state);
          }
          if (rep >= 0) {
            long ns = g.stepLaunch().kernelNanos;
            kernel[s] = ns > 0 ? ns : -1; // -1: not profiled
            e2e[s] = System.nanoTime() - t1;
          }
        }
      }
      LaunchContext sl = g.stepLaunch(); // where the timed steps ran
      checkOpenCl(g.kernel(), "generation");
      checkOpenCl(sl.kernel, "generation's decode steps");
      registerHint("model kernel", g.kernel());
      registerHint("decode steps' kernel", sl.kernel);
      long[] get = new long[10];
      for (int i = 0; i < get.length; i++) {
        long t = System.nanoTime();
        sl.kernel.get(sl.kernel.out);
        get[i] = System.nanoTime() - t;
      }
      System.out.printf(
          Locale.ROOT,
          "  the step's logits read back alone: %.3f ms (%.1f MB)%n",
          median(get),
          4e-6 * sl.kernel.out.length);
      MambaState st = last; // held where the timed steps left it, so these steps run there too
      breakdown(sl, () -> g.forwardLastLogits(logits, new int[B], B, 1, st));
      long launches = launchesPerCall(sl, () -> g.forwardLastLogits(logits, new int[B], B, 1, st));
      row(
          "generate step " + name(c),
          "B=" + B + ", after a " + prompt + "-token prefill",
          launches
              + " launches/step, on "
              + (sl != g.launch ? "DecodeKernel's program" : "the whole program"),
          ms(kernel),
          "-",
          ms(e2e),
          String.format(
              Locale.ROOT,
              "%.0f tokens/s (argmax on the %s); matrices read at %s of kernel time; prefill"
                  + " %.1f ms, first step %.1f ms (the state, %.1f MB, then stays on the device)",
              B / (median(e2e) / 1e3),
              hostArgmax ? "host, not timed" : "device",
              kernel[0] < 0
                  ? "- GB/s (no profiling)"
                  : String.format(
                      Locale.ROOT, "%.0f GB/s", g.stepMatrixBytes() / (median(kernel) * 1e6)),
              prefill[1] / 1e6,
              e2e[0] / 1e6,
              new MambaState(c, B).bytes() / 1e6));
    }
  }

  private static long launchesPerCall(LaunchContext launch, Runnable call) {
    long before = launch.launches;
    call.run();
    return launch.launches - before;
  }

  /**
   * What the compiler gives the whole model kernel, the decode step's ({@link DecodeKernel}) and
   * the kernels one family of its operations would make alone (the SGEMM; the version-4 scans): on
   * NVIDIA the largest work-group shows the registers a thread takes, which bound the warps a
   * compute unit holds.
   */
  void registers() {
    com.aparapi.Kernel[] kernels = {
      new MambaKernel(), new DecodeKernel(), new SgemmAlone(), new ScansAlone()
    };
    // not disposed: Aparapi's dispose of a kernel that was only queried crashes in native code
    for (com.aparapi.Kernel k : kernels) {
      registerHint(k.getClass().getSimpleName(), k);
    }
  }

  /** The forward's SGEMM as a kernel of its own. */
  static final class SgemmAlone extends MambaKernel {
    @Override
    public void run() {
      gemm2();
    }
  }

  /** The version-4 scans as a kernel of their own. */
  static final class ScansAlone extends MambaKernel {
    @Override
    public void run() {
      if (op == OP_SCAN_FWD4) {
        scanForward4();
      } else {
        scanBackward4();
      }
    }
  }

  // ---- helpers

  /**
   * What OpenCL says of the compiled model kernel: its largest work-group (on NVIDIA bounded by the
   * registers a thread takes: 1024 at ≤ 64 registers, 512 at ≤ 128, 256 above) and its private
   * memory a work-item (spills).
   */
  private void registerHint(String what, com.aparapi.Kernel k) {
    try {
      System.out.printf(
          Locale.ROOT,
          "  %s: max work-group %d, preferred multiple %d, private %d bytes a work-item%n",
          what,
          k.getKernelMaxWorkGroupSize(device),
          k.getKernelPreferredWorkGroupSizeMultiple(device),
          k.getKernelMinimumPrivateMemSizeInUsePerWorkItem(device));
    } catch (com.aparapi.exception.QueryFailedException e) {
      System.out.println("  " + what + ": work-group query failed: " + e.getMessage());
    }
  }

  private void checkOpenCl(com.aparapi.Kernel k, String what) {
    OpenClDevices.checkRanOnDevice(k, device, what); // throws on a fallback: no number printed
  }

  private int i(String key, int dflt) {
    return Integer.parseInt(opt.getOrDefault(key, Integer.toString(dflt)));
  }

  private int runs() {
    return i("runs", 30);
  }

  private int warmup() {
    return i("warmup", 5);
  }

  /** A published preset (MambaConfig#preset). */
  private MambaConfig preset() {
    String p = opt.getOrDefault("preset", "mamba-130m");
    return MambaConfig.preset(p);
  }

  private String weights() {
    return opt.getOrDefault("weights", "fp32");
  }

  private String name(MambaConfig c) {
    return opt.getOrDefault("preset", "mamba-130m")
        + " (D="
        + c.hiddenSize
        + (weights().equals("fp32") ? ")" : ", " + weights() + ")");
  }

  private ScanTiling defaultTiling(boolean forward, int B, int ED) {
    boolean few = ScanTiling.fewRows(B, ED, device.getMaxComputeUnits());
    if (forward) {
      return few ? ScanTiling.FORWARD_FEW_ROWS : ScanTiling.FORWARD;
    }
    return few ? ScanTiling.BACKWARD_FEW_ROWS : ScanTiling.BACKWARD;
  }

  private ScanTiling tiling(boolean forward) {
    int B = i("B", 8);
    int ED = i("ED", 1536);
    ScanTiling d = defaultTiling(forward, B, ED);
    return new ScanTiling(i("ce", d.ce), i("S", d.segments), i("I", d.items));
  }

  private static double median(long[] ns) {
    long[] s = ns.clone();
    Arrays.sort(s);
    return s.length == 0 ? -1 : s[s.length / 2] / 1e6;
  }

  private static String ms(long[] ns) {
    if (ns.length == 0 || ns[0] < 0) {
      return "n/a";
    }
    long[] s = ns.clone();
    Arrays.sort(s);
    return String.format(
        Locale.ROOT, "%.3f ms (min %.3f, n=%d)", s[s.length / 2] / 1e6, s[0] / 1e6, s.length);
  }

  private static String tokensPerSecond(int tokens, long[] kernel, long[] e2e) {
    String e = String.format(Locale.ROOT, "%.0f tokens/s end-to-end", tokens / (median(e2e) / 1e3));
    if (kernel.length == 0 || kernel[0] < 0) {
      return e + " (not profiled)";
    }
    return e
        + String.format(
            Locale.ROOT, ", %.0f tokens/s kernel-only", tokens / (median(kernel) / 1e3));
  }

  private static double relErr(float[] a, float[] b) {
    double num = 0;
    double den = 0;
    for (int i = 0; i < a.length; i++) {
      double d = (double) a[i] - b[i];
      num += d * d;
      den += (double) b[i] * b[i];
    }
    return Math.sqrt(num / Math.max(den, 1e-30));
  }

  private void row(
      String what,
      String size,
      String config,
      String kernel,
      String wall,
      String e2e,
      String note) {
    String dev = device.getName().trim() + " (OpenCL " + device.getType() + ")";
    System.out.printf(
        "%s %s [%s] on %s: kernel %s; launch+kernel %s; end-to-end %s; %s%n",
        what, size, config, dev, kernel, wall, e2e, note);
    table.add(String.join(" | ", "", what, size, config, kernel, e2e, note, dev, ""));
  }

  private void printTable() {
    System.out.println();
    System.out.println(
        "| work | size | config | kernel (median) | end-to-end (median) | notes | device |");
    System.out.println("|---|---|---|---|---|---|---|");
    for (String r : table) {
      System.out.println(r.trim());
    }
  }
}
