package org.mambaspark.kernel;

import com.aparapi.Kernel;
import com.aparapi.ProfileInfo;
import java.util.List;

/**
 * Kernel-only time from OpenCL's own event timestamps (Aparapi's profile of the last launch, which
 * exists when the JVM runs with {@code -Dcom.aparapi.enableProfiling=true}): what the benchmarks
 * (KernelBench) reports as kernel time, free of launch and transfer costs.
 */
final class KernelTimer {
  private KernelTimer() {}

  /** Nanoseconds the last launch's kernels executed on the device, or -1 without profiling. */
  static long lastKernelNanos(Kernel k) {
    List<ProfileInfo> infos = k.getProfileInfo();
    if (infos == null || infos.isEmpty()) {
      return -1;
    }
    long ns = 0;
    for (ProfileInfo p : infos) {
      if ("X".equals(String.valueOf(p.getType()))) {
        ns += p.getEnd() - p.getStart();
      }
    }
    return ns;
  }
}
