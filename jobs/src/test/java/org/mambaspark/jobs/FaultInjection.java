package org.mambaspark.jobs;

import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.ExceptionFailure;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.apache.spark.api.plugin.SparkPlugin;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerExecutorRemoved;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.util.TaskCompletionListener;

/**
 * Faults for the training tests, injected from outside the training code: a Spark plugin ({@code
 * spark.plugins}) whose executor side runs on every task's thread before the task, in the
 * executor's JVM (the test classes are on a local-cluster executor's classpath). A test arms it
 * with a Spark local property on the driver thread, which Spark hands to the tasks of the jobs that
 * thread starts; the training code knows nothing of it. Only the training step jobs are hit: their
 * descriptions start with {@value #STEP_JOBS}.
 */
public final class FaultInjection implements SparkPlugin {
  /**
   * Local property: the first attempt of each training-step task of this partition fails when it
   * ends, after it did its work (its shuffle output written, its cached model used), so that Spark
   * retries it.
   */
  static final String FAIL_FIRST_ATTEMPT_OF_PARTITION = "mamba.test.failFirstAttemptOfPartition";

  /**
   * Local property: the executor JVM that first runs a task of partition 0 in the gradient job of
   * this step (1-based, as the step's job description numbers it) halts, losing its cached
   * optimizer shards and shuffle files as a crashed executor would. Never the driver's JVM. Needs
   * {@link #HALT_MARKER}.
   */
  static final String HALT_EXECUTOR_IN_STEP = "mamba.test.haltExecutorInStep";

  /**
   * Local property: a file that does not exist yet, which the halting executor creates first, so
   * that one executor halts (the job's later stages also have a partition 0, run on the others).
   */
  static final String HALT_MARKER = "mamba.test.haltMarker";

  static final String STEP_JOBS = "mamba train: step";

  @Override
  public DriverPlugin driverPlugin() {
    return null;
  }

  @Override
  public ExecutorPlugin executorPlugin() {
    return new Faults();
  }

  private static boolean firstToCreate(String marker) {
    try {
      java.nio.file.Files.createFile(java.nio.file.Path.of(marker));
      return true;
    } catch (java.nio.file.FileAlreadyExistsException e) {
      return false;
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  static final class Faults implements ExecutorPlugin {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(Faults.class);

    @Override
    public void init(PluginContext ctx, Map<String, String> extraConf) {}

    @Override
    public void onTaskStart() {
      TaskContext tc = TaskContext.get();
      String job = tc.getLocalProperty("spark.job.description");
      if (job == null || !job.startsWith(STEP_JOBS)) {
        return;
      }
      String haltIn = tc.getLocalProperty(HALT_EXECUTOR_IN_STEP);
      if (haltIn != null
          && job.startsWith(STEP_JOBS + " " + haltIn + ": gradients")
          && tc.partitionId() == 0
          && tc.stageAttemptNumber() == 0
          && tc.attemptNumber() == 0
          && !"driver".equals(SparkEnv.get().executorId())
          && firstToCreate(tc.getLocalProperty(HALT_MARKER))) {
        LOG.warn(
            "fault injection: halting executor {} in '{}', stage {}",
            SparkEnv.get().executorId(),
            job,
            tc.stageId());
        Runtime.getRuntime().halt(3);
      }
      String failPartition = tc.getLocalProperty(FAIL_FIRST_ATTEMPT_OF_PARTITION);
      if (failPartition != null
          && Integer.toString(tc.partitionId()).equals(failPartition)
          && tc.attemptNumber() == 0) {
        // onTaskStart's exceptions are logged and dropped by Spark; a completion listener's fail
        // the task
        tc.addTaskCompletionListener(
            (TaskCompletionListener)
                done -> {
                  throw new IllegalStateException(
                      "injected failure of partition "
                          + failPartition
                          + ", attempt 0, stage "
                          + done.stageId()
                          + " ('"
                          + job
                          + "')");
                });
      }
    }
  }

  /**
   * What the driver saw of the faults (a listener: its events arrive a little after the jobs end):
   * task attempts failed by the injection, executors removed.
   */
  static final class Seen extends SparkListener {
    final AtomicInteger injectedFailures = new AtomicInteger();
    final AtomicInteger executorsRemoved = new AtomicInteger();

    @Override
    public void onTaskEnd(SparkListenerTaskEnd end) {
      if (end.reason() instanceof ExceptionFailure f
          && f.description() != null
          && f.description().contains("injected failure")) {
        injectedFailures.incrementAndGet();
      }
    }

    @Override
    public void onExecutorRemoved(SparkListenerExecutorRemoved removed) {
      executorsRemoved.incrementAndGet();
    }

    /** Waits (at most 30 s) until the counter reaches at least n; returns its value. */
    static int atLeast(AtomicInteger counter, int n) throws InterruptedException {
      long deadline = System.nanoTime() + 30_000_000_000L;
      while (counter.get() < n && System.nanoTime() < deadline) {
        Thread.sleep(100);
      }
      return counter.get();
    }
  }
}
