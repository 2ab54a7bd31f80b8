package org.mambaspark.ops;

import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Whether the fast CPU paths may use the Vector API ({@code jdk.incubator.vector}, incubating in
 * Java 17, so the JVM needs {@code --add-modules=jdk.incubator.vector}). Classes that touch {@code
 * FloatVector} are only loaded when {@link #ENABLED} is true; otherwise the scalar paths run and
 * this says so once, loudly. {@code -Dmamba.simd=false} forces the scalar paths.
 */
public final class Simd {
  private static final Logger LOG = LoggerFactory.getLogger(Simd.class);

  public static final boolean ENABLED = detect();

  private Simd() {}

  private static boolean detect() {
    if ("false".equalsIgnoreCase(System.getProperty("mamba.simd", "true"))) {
      LoudWarning.warn(
          LOG,
          "mamba.simd=false: the Vector API is switched off, the CPU path runs scalar loops (several times slower)");
      return false;
    }
    Optional<Module> m = ModuleLayer.boot().findModule("jdk.incubator.vector");
    if (m.isEmpty()) {
      LoudWarning.warn(
          LOG,
          "*** The Vector API module is not loaded: the CPU path falls back to scalar loops, several times slower."
              + " Start the JVM with --add-modules=jdk.incubator.vector (bin/mamba and conf/spark-defaults.conf do). ***");
      return false;
    }
    return true;
  }
}
