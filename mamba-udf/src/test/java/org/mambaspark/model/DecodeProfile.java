package org.mambaspark.model;

import java.lang.management.ManagementFactory;
import java.util.Locale;
import java.util.SplittableRandom;
import org.mambaspark.ops.Activations;
import org.mambaspark.ops.Conv1d;
import org.mambaspark.ops.Matmul;
import org.mambaspark.ops.Parallel;
import org.mambaspark.ops.RmsNorm;
import org.mambaspark.ops.SelectiveScan;
import org.mambaspark.ops.WeightMatrix;

/**
 * Where a Mamba-1 decode step's time goes (B = 1, L = 1): the step taken apart into the pieces
 * {@link SelectiveMixer#forward} and {@link MambaModel#forward} run, each timed by the wall clock
 * and by the process's CPU time, summed over the layers and averaged over the steps; then the whole
 * step uninstrumented through {@link CpuBackend}, for comparison. The process CPU clock ticks in
 * steps of 10 ms here, so a piece's CPU column means little; the totals and the wall column do (run
 * with one thread on a busy machine and read the wall column against the CPU total). A plain main,
 * not a test.
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -cp mamba-udf/target/classes:mamba-udf/target/test-classes:DEPS \
 *   org.mambaspark.model.DecodeProfile [preset=mamba-130m] [dtype=fp32] [threads=2] [steps=64]
 * </pre>
 */
public final class DecodeProfile {
  private DecodeProfile() {}

  private static final String[] PIECES = {
    "rmsnorm",
    "A=-exp(A_log)ᵀ",
    "in_proj",
    "conv+state",
    "x_proj",
    "dt_proj",
    "scan",
    "out_proj",
    "residual add",
    "norm_f",
    "lm_head",
    "argmax",
    "softplus"
  };

  private static final com.sun.management.OperatingSystemMXBean OS =
      (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();

  private static final long[] WALL = new long[PIECES.length];
  private static final long[] CPU = new long[PIECES.length];
  private static long lastWall;
  private static long lastCpu;

  private static void mark() {
    lastWall = System.nanoTime();
    lastCpu = OS.getProcessCpuTime();
  }

  private static void lap(int piece) {
    long w = System.nanoTime(), c = OS.getProcessCpuTime();
    WALL[piece] += w - lastWall;
    CPU[piece] += c - lastCpu;
    lastWall = w;
    lastCpu = c;
  }

  public static void main(String[] args) {
    String preset = args.length > 0 ? args[0] : "mamba-130m";
    WeightMatrix.Dtype dtype =
        WeightMatrix.Dtype.parse(args.length > 1 ? args[1] : "fp32", "dtype");
    Parallel.setThreads(args.length > 2 ? Integer.parseInt(args[2]) : 2);
    int steps = args.length > 3 ? Integer.parseInt(args[3]) : 64;
    MambaConfig c = MambaConfig.preset(preset);
    MambaWeights w = Initialization.initialize(c, 1);
    MambaModel model = new MambaModel(w, dtype);
    int D = c.hiddenSize, ED = c.intermediateSize, N = c.stateSize, R = c.timeStepRank;
    int K = c.convKernel, P = c.xProjSize(), V = c.vocabSize;
    WeightMatrix[] in = new WeightMatrix[c.numLayers];
    WeightMatrix[] xp = new WeightMatrix[c.numLayers];
    WeightMatrix[] out = new WeightMatrix[c.numLayers];
    for (int l = 0; l < c.numLayers; l++) {
      LayerWeights lw = (LayerWeights) w.blocks[l];
      in[l] = WeightMatrix.of(lw.inProj, 2 * ED, D, dtype);
      xp[l] = WeightMatrix.of(lw.xProj, P, ED, dtype);
      out[l] = WeightMatrix.of(lw.outProj, D, ED, dtype);
    }
    WeightMatrix head = WeightMatrix.of(w.embeddings, V, D, dtype);
    MambaState state = new MambaState(c, 1);
    float[] x = new float[D], xNorm = new float[D], o = new float[D], hidden = new float[D];
    float[] xz = new float[2 * ED], xs = new float[ED], dbc = new float[P], delta = new float[ED];
    float[] y = new float[ED], logits = new float[V];
    SelectiveMixer.Acts acts = (SelectiveMixer.Acts) model.mixer.newActivations(1, 1, false, 1);
    SplittableRandom rnd = new SplittableRandom(7);
    int token = rnd.nextInt(V);
    for (int pass = 0; pass < 2; pass++) { // the first pass warms up
      java.util.Arrays.fill(WALL, 0);
      java.util.Arrays.fill(CPU, 0);
      for (int s = 0; s < steps; s++) {
        head.decode(token, 0, D, x, 0);
        mark();
        for (int l = 0; l < c.numLayers; l++) {
          LayerWeights lw = (LayerWeights) w.blocks[l];
          RmsNorm.rmsnormForward(xNorm, null, x, lw.norm, 1, D, c.layerNormEpsilon);
          lap(0);
          float[] aT = acts.aT(lw.aLog, ED, N);
          lap(1);
          Matmul.matmulForward(xz, 0, 2 * ED, xNorm, 0, D, in[l], lw.inProjBias, 1);
          lap(2);
          Conv1d.convStep(
              xs, xz, 0, 2 * ED, state.conv(l), lw.conv1dWeight, lw.conv1dBias, 1, ED, K);
          lap(3);
          Matmul.matmulForward(dbc, 0, P, xs, 0, ED, xp[l], null, 1);
          lap(4);
          Matmul.matmulForward(delta, 0, ED, dbc, 0, P, lw.dtProj, lw.dtProjBias, 1, R, ED);
          lap(5);
          Activations.softplusForward(delta, 0, ED, 1, ED);
          lap(12);
          SelectiveScan.scanForward(
              y, state.ssm(l), xs, delta, aT, dbc, R, lw.dSkip, xz, ED, 2 * ED, 1, 1, ED, N);
          lap(6);
          Matmul.matmulForward(o, 0, D, y, 0, ED, out[l], lw.outProjBias, 1);
          lap(7);
          for (int i = 0; i < D; i++) {
            x[i] += o[i];
          }
          lap(8);
        }
        RmsNorm.rmsnormForward(hidden, null, x, w.normF, 1, D, c.layerNormEpsilon);
        lap(9);
        Matmul.matmulForward(logits, 0, V, hidden, 0, D, head, null, 1);
        lap(10);
        int best = 0;
        for (int v = 1; v < V; v++) {
          if (logits[v] > logits[best]) {
            best = v;
          }
        }
        token = best;
        lap(11);
      }
    }
    long tw = 0, tc = 0;
    System.out.printf(
        Locale.ROOT,
        "%s %s, %d threads, %d steps; per step, the layers summed:%n",
        preset,
        dtype.label(),
        Parallel.threads(),
        steps);
    System.out.printf(Locale.ROOT, "%-18s %9s %9s %7s%n", "piece", "wall ms", "cpu ms", "cpu/wall");
    for (int i = 0; i < PIECES.length; i++) {
      tw += WALL[i];
      tc += CPU[i];
      System.out.printf(
          Locale.ROOT,
          "%-18s %9.3f %9.3f %7.2f%n",
          PIECES[i],
          WALL[i] / 1e6 / steps,
          CPU[i] / 1e6 / steps,
          (double) CPU[i] / Math.max(1, WALL[i]));
    }
    System.out.printf(
        Locale.ROOT,
        "%-18s %9.3f %9.3f %7.2f  (%.1f tokens/s)%n",
        "total",
        tw / 1e6 / steps,
        tc / 1e6 / steps,
        (double) tc / tw,
        steps * 1e9 / tw);
    // the same step uninstrumented, as the generator runs it
    ModelRunner runner = Backends.cpu().open(model);
    MambaState st = new MambaState(c, 1);
    int[] ids = {token};
    for (int pass = 0; pass < 2; pass++) {
      long w0 = System.nanoTime(), c0 = OS.getProcessCpuTime();
      for (int s = 0; s < steps; s++) {
        runner.forwardLastLogits(logits, ids, 1, 1, st);
      }
      long ww = System.nanoTime() - w0, cc = OS.getProcessCpuTime() - c0;
      System.out.printf(
          Locale.ROOT,
          "whole step (CpuBackend): %.3f ms wall, %.3f ms cpu, %.1f tokens/s%n",
          ww / 1e6 / steps,
          cc / 1e6 / steps,
          steps * 1e9 / ww);
    }
  }
}
