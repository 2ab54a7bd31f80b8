package org.mambaspark.kernel;

/**
 * The decode step's passes ({@link DecodePlan}) as a program of their own. NVIDIA's OpenCL spends
 * host time on every argument of a kernel at each enqueue, and the whole model's program has about
 * 150 (every operation's fields); a decode step enqueues one pass per operation of every layer, and
 * on this program, whose arguments (about 25) are only what the step passes read, a pass took 8–14
 * µs less host time on an H100 and an H200 (docs/gpu.md). {@link GpuModel} runs decode steps on it
 * when a second copy of the weights fits.
 */
final class DecodeKernel extends MambaKernel {
  @Override
  public void run() {
    if (op == OP_STEP) {
      // as MambaKernel's dispatch: one branch on the pass's kind, nothing after it (PoCL)
      if (plan[planOff + getPassId() * REC] < P_SSD_SCAN) {
        step();
      } else {
        ssdPass();
      }
    }
  }
}
