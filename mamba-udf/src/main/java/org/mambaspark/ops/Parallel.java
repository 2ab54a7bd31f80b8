package org.mambaspark.ops;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.RecursiveAction;

/**
 * The engine's one thread pool. Work is split into at most {@link #threads()} contiguous ranges, so
 * a caller's loop body stays a plain indexed loop with hoisted offsets. Size: {@code
 * -Dmamba.threads=T} or {@link #setThreads}, default the available processors. Spark task threads
 * share the pool (each call blocks only its caller).
 */
public final class Parallel {
  /** A loop body over the half-open range [from, to). */
  @FunctionalInterface
  public interface RangeBody {
    void run(int from, int to);
  }

  private static volatile ForkJoinPool pool = newPool(defaultThreads());

  private Parallel() {}

  private static int defaultThreads() {
    String p = System.getProperty("mamba.threads");
    if (p != null && !p.isBlank()) {
      try {
        int t = Integer.parseInt(p.trim());
        if (t > 0) {
          return t;
        }
      } catch (NumberFormatException e) {
        // fall through to the error below
      }
      throw new IllegalArgumentException(
          "mamba.threads must be a positive integer, got '" + p + "'");
    }
    return Runtime.getRuntime().availableProcessors();
  }

  private static ForkJoinPool newPool(int threads) {
    return new ForkJoinPool(threads);
  }

  public static int threads() {
    return pool.getParallelism();
  }

  /** Resizes the pool (the CLI's {@code --threads}); calls in flight finish on the old pool. */
  public static synchronized void setThreads(int threads) {
    if (threads <= 0) {
      throw new IllegalArgumentException("threads must be positive, got " + threads);
    }
    if (threads != threads()) {
      ForkJoinPool old = pool;
      pool = newPool(threads);
      old.shutdown();
    }
  }

  /**
   * Runs {@code body} over [0, n) in up to {@code threads()} pieces, each a multiple of {@code
   * grain} long (except the last). Runs inline when there is one piece, so small problems pay no
   * hand-off.
   */
  public static void forRange(int n, int grain, RangeBody body) {
    if (n <= 0) {
      return;
    }
    int g = Math.max(1, grain);
    int blocks = (n + g - 1) / g;
    int pieces = Math.min(blocks, threads());
    if (pieces <= 1) {
      body.run(0, n);
      return;
    }
    ForkJoinPool p = pool;
    RecursiveAction[] tasks = new RecursiveAction[pieces];
    for (int i = 0; i < pieces; i++) {
      int from = (int) ((long) blocks * i / pieces) * g;
      int to = Math.min(n, (int) ((long) blocks * (i + 1) / pieces) * g);
      tasks[i] =
          new RecursiveAction() {
            private static final long serialVersionUID = 1L;

            @Override
            protected void compute() {
              body.run(from, to);
            }
          };
    }
    if (ForkJoinTask.getPool() == p) {
      RecursiveAction.invokeAll(tasks); // already inside the pool: fork-join, no deadlock
    } else {
      p.invoke(
          new RecursiveAction() {
            private static final long serialVersionUID = 1L;

            @Override
            protected void compute() {
              invokeAll(tasks);
            }
          });
    }
  }

  /** A loop body over one block index. */
  @FunctionalInterface
  public interface BlockBody {
    void run(int block);
  }

  /**
   * Runs body(0 .. blocks-1) in parallel. For reductions: give each block its own partial sum and
   * add the partials in block order afterwards, so the result does not depend on the thread count
   * or on timing (a retried Spark task must reproduce its gradient exactly).
   */
  public static void forEachBlock(int blocks, BlockBody body) {
    forRange(
        blocks,
        1,
        (from, to) -> {
          for (int i = from; i < to; i++) {
            body.run(i);
          }
        });
  }
}
