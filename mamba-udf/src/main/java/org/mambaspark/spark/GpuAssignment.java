package org.mambaspark.spark;

import java.util.Arrays;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The GPU Spark gave a task ({@code spark.task.resource.gpu.amount} with a discovery script): its
 * address from {@code TaskContext} resources. This build's engine computes on the CPU; where Spark
 * assigns a GPU that it cannot use yet, the executor says so once, loudly, rather than fall back in
 * silence.
 */
public final class GpuAssignment {
  private static final Logger LOG = LoggerFactory.getLogger(GpuAssignment.class);
  private static final AtomicBoolean WARNED = new AtomicBoolean();

  private GpuAssignment() {}

  /** The first GPU address assigned to the running task, if any. */
  public static Optional<String> address(TaskContext tc) {
    if (tc == null) {
      return Optional.empty();
    }
    ResourceInformation gpu = tc.resourcesJMap().get("gpu");
    if (gpu == null || gpu.addresses().length == 0) {
      return Optional.empty();
    }
    if (WARNED.compareAndSet(false, true)) {
      LOG.warn(
          "*** {}: Spark assigned GPU(s) {} to this task, but this build's engine has no GPU"
              + " backend: running on the CPU. ***",
          ModelCache.jvmId(),
          Arrays.toString(gpu.addresses()));
    }
    return Optional.of(gpu.addresses()[0]);
  }
}
