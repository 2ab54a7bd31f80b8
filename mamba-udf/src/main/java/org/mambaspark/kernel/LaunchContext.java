package org.mambaspark.kernel;

import com.aparapi.Range;
import com.aparapi.device.OpenCLDevice;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import org.mambaspark.model.Architecture;
import org.mambaspark.model.MambaConfig;

/**
 * How the model's one {@link MambaKernel} instance is launched on its device: single ops with the
 * local memory each needs ({@link #launch}), records of the launch table as one launch of several
 * passes ({@link #passes}), the products ({@link #matmul}) and element-wise copies and fills that
 * both {@link ForwardPlan} and {@link BackwardPlan} use, the launch table's regions, and the
 * benchmarks' counters and kernel times.
 */
final class LaunchContext {
  final MambaKernel kernel;
  final OpenCLDevice device;
  private final MambaConfig c;
  private boolean checked;

  /** Benchmarks: accumulate OpenCL's kernel time of every launch into kernelNanos. */
  boolean profile;

  long kernelNanos;

  /** Benchmarks: when not null (and profiling), kernel time per op (GEMMs per shape). */
  Map<String, Long> opNanos;

  long launches;

  /**
   * What the launch table holds after the forward's records ({@link #forwardSlots}): the {@link
   * DecodePlan} whose records they are, or the key of Mamba-2's backward records ({@link
   * BackwardPlan}); whoever writes there next sets it.
   */
  Object tableTail;

  LaunchContext(MambaKernel kernel, OpenCLDevice device, MambaConfig c) {
    this.kernel = kernel;
    this.device = device;
    this.c = c;
  }

  /**
   * Aparapi's profiling keeps one event of a launch of several passes (and the runtime crashed
   * reading them on the H100): with profiling on, each pass is a launch of its own.
   */
  private static final boolean PROFILING = Boolean.getBoolean("com.aparapi.enableProfiling");

  /** Records [first, first + n) of the launch table as one launch of n passes. */
  void passes(int first, int n, String what) {
    passes(first, n, what, StepKernel.STEP_LOCAL);
  }

  /** As {@link #passes(int, int, String)}, with local floats other than a step's. */
  void passes(int first, int n, String what, int localFloats) {
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
            opNanos.merge(passName(kernel.planOff, what), ns, Long::sum);
          }
        }
      }
    } else {
      kernel.planOff = first * StepKernel.REC;
      kernel.execute(range, n);
      launches++;
    }
    checkOnDevice();
  }

  /** A profiled pass's key: its kind, and a product's M × N × K (the record's first three ints). */
  private String passName(int r, String what) {
    int kind = kernel.plan[r];
    String shape =
        kind == StepKernel.P_GEMV || kind == StepKernel.P_GEMM || kind == StepKernel.P_GEMM_SUM
            ? " " + kernel.plan[r + 1] + "x" + kernel.plan[r + 2] + "x" + kernel.plan[r + 3]
            : "";
    if (kind == StepKernel.P_GEMM || kind == StepKernel.P_GEMM_SUM) {
      shape += " in " + kernel.plan[r + 14] + " parts";
    }
    return "step pass kind " + kind + shape + " (" + what + ")";
  }

  void launch(int op, int global, int local) {
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
    checkOnDevice();
  }

  private void checkOnDevice() {
    if (!checked) {
      OpenClDevices.checkRanOnDevice(kernel, device, "the model kernel");
      checked = true;
    }
  }

  /** Threads for a grid-stride op over n elements: at most 8 groups of 256 a compute unit. */
  int gridStride(int n) {
    return Math.min(n, device.getMaxComputeUnits() * 8 * 256);
  }

  // Local memory per launch: Aparapi sizes a @Local array from the array bound at each execute,
  // so every op gets what it needs rather than the largest op's need (local memory per work-group
  // bounds how many groups share a compute unit).
  private final Map<Integer, float[]> localArrays = new HashMap<>();

  float[] localArray(int floats) {
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
      case ScanKernel.OP_SCAN_BWD_CARRY:
        return ScanKernel.scanBackward4Local(kernel.sCe, kernel.sSeg, c.stateSize);
      default:
        return 1;
    }
  }

  /**
   * C[m, n] (+)= Σ_k A[m, k]·B[k, n] (+ bias[n]) (then act), addresses as in {@link MambaKernel}'s
   * GEMM fields; M ≤ {@link MambaKernel#GEMV_MAX_M} goes to the GEMV kernel.
   */
  void matmul(Product p) {
    GemmLaunch.gemm(kernel, this::launch, p);
  }

  void copy(int dstSel, int dstOff, int srcSel, int srcOff, int n) {
    kernel.eN = n;
    kernel.eDstSel = dstSel;
    kernel.eDstOff = dstOff;
    kernel.eSrcSel = srcSel;
    kernel.eSrcOff = srcOff;
    launch(MambaKernel.OP_COPY, n, 256);
  }

  void fill(int dstSel, int dstOff, int n) {
    kernel.eN = n;
    kernel.eDstSel = dstSel;
    kernel.eDstOff = dstOff;
    launch(MambaKernel.OP_FILL, n, 256);
  }

  // ---- the launch table (StepKernel#plan)

  /**
   * Records at the head of the launch table for the forward: Falcon-Mamba's part norms and their
   * backward, or each Mamba-2 layer's scan and gated norm; the decode plan's, or Mamba-2's
   * backward's, follow ({@link #tableTail}).
   */
  int forwardSlots() {
    return c.architecture == Architecture.MAMBA2 ? 2 * c.numLayers : 2;
  }

  /** The launch table holds at least n ints (the records it has are kept). */
  void ensureTable(int n) {
    if (kernel.plan.length < n) {
      kernel.plan = Arrays.copyOf(kernel.plan, n);
      kernel.planF = Arrays.copyOf(kernel.planF, n);
    }
  }

  void putTable() {
    kernel.put(kernel.plan);
    kernel.put(kernel.planF);
  }
}
