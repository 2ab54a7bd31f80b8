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
 * address from {@code TaskContext} resources, which {@link
 * org.mambaspark.model.Backends#forGpuAddress} turns into that device's backend (which logs the
 * device it runs on, or, loudly, why it falls back to the CPU).
 */
public final class GpuAssignment {
  private static final Logger LOG = LoggerFactory.getLogger(GpuAssignment.class);
  private static final AtomicBoolean LOGGED = new AtomicBoolean();

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
    if (LOGGED.compareAndSet(false, true)) {
      LOG.info(
          "{}: Spark assigns GPU(s) {} to this executor's tasks",
          ModelCache.jvmId(),
          Arrays.toString(gpu.addresses()));
    }
    return Optional.of(gpu.addresses()[0]);
  }
}
