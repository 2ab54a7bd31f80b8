package org.mambaspark.ops;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;

/**
 * The engine's one thread pool. Work is split into contiguous pieces, so a caller's loop body stays
 * a plain indexed loop with hoisted offsets. Size: {@code -Dmamba.threads=T} or {@link
 * #setThreads}, default the available processors.
 *
 * <p>The calling thread works too: it runs pieces itself while T − 1 pool workers are woken to take
 * the others, and waits only for pieces already started. A decode step makes some hundred parallel
 * calls of a few microseconds each; a caller that handed every piece to the pool and slept would
 * pay a wake-up per call, and, on a busy machine, wait for a descheduled worker to start its piece
 * (a worker that comes late finds nothing left and returns). Which thread runs a piece never
 * changes its result. Spark task threads share the pool, each working on its own calls.
 *
 * <p>A worker that has finished its pieces may linger, spinning, for up to M µs for the next call
 * and take pieces of it at once; a call finds such a worker and submits no task for it. A decode
 * step makes its calls a few to a few hundred microseconds apart, so its helpers stay awake through
 * the step instead of being woken for each matrix. The spinning costs CPU time, and on a machine
 * with no idle core it takes it from the threads that do the work. So by default workers linger
 * ({@link #DECODE_LINGER_MICROS}) only while exactly one {@link #decoding} loop runs in the JVM (a
 * generate loop; several at once, as Spark tasks sharing an executor, would fill its cores with
 * spinning); {@code -Dmamba.lingerMicros=M} sets M for every call instead, and 0 switches lingering
 * off.
 */
public final class Parallel {
  /** A loop body over the half-open range [from, to). */
  @FunctionalInterface
  public interface RangeBody {
    void run(int from, int to);
  }

  private static volatile int threads = defaultThreads();
  private static volatile ForkJoinPool pool = newPool(threads);

  /** Waits this long spinning for a running piece before parking between checks. */
  private static final long SPIN_NANOS = 50_000;

  /**
   * How long a worker that ran out of pieces waits, spinning, for the next call (0: not at all);
   * negative: not set, lingering then follows {@link #decoding} loops.
   */
  private static volatile long lingerNanos = lingerFromProperty();

  /** The linger of a lone decode loop: a step's calls come within tens of microseconds. */
  static final long DECODE_LINGER_MICROS = 200;

  /** Decode loops running now (see {@link #decoding}). */
  private static final AtomicInteger DECODING = new AtomicInteger();

  /** The newest call's work loop, which lingering workers join. */
  private static final AtomicReference<Runnable> LATEST = new AtomicReference<>();

  /** Workers lingering now: a call submits tasks only for the helpers beyond them. */
  private static final AtomicInteger LINGERING = new AtomicInteger();

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

  private static long lingerFromProperty() {
    String p = System.getProperty("mamba.lingerMicros");
    if (p == null || p.isBlank()) {
      return -1;
    }
    try {
      long us = Long.parseLong(p.trim());
      if (us >= 0) {
        return us * 1000;
      }
    } catch (NumberFormatException e) {
      // fall through to the error below
    }
    throw new IllegalArgumentException(
        "mamba.lingerMicros must be a non-negative integer, got '" + p + "'");
  }

  /**
   * Sets the linger time (tests); 0 switches lingering off, a negative value restores the default
   * (lingering during a lone decode loop).
   */
  static void setLingerNanos(long nanos) {
    lingerNanos = nanos < 0 ? -1 : nanos;
  }

  /** The linger setting as set (negative: the default), for tests to restore. */
  static long lingerSetting() {
    return lingerNanos;
  }

  /** The linger a call made now gets. */
  static long lingerNanos() {
    long l = lingerNanos;
    if (l >= 0) {
      return l;
    }
    return DECODING.get() == 1 ? DECODE_LINGER_MICROS * 1000 : 0;
  }

  /**
   * Runs a token-by-token decode loop: while it is the only one in the JVM, pool workers linger
   * between its calls unless {@code mamba.lingerMicros} says otherwise.
   */
  public static <T> T decoding(Supplier<T> loop) {
    DECODING.incrementAndGet();
    try {
      return loop.get();
    } finally {
      DECODING.decrementAndGet();
    }
  }

  /** T − 1 workers: the caller is the T-th. */
  private static ForkJoinPool newPool(int threads) {
    return new ForkJoinPool(Math.max(1, threads - 1));
  }

  public static int threads() {
    return threads;
  }

  /** Resizes the pool (the CLI's {@code --threads}); calls in flight finish on the old pool. */
  public static synchronized void setThreads(int t) {
    if (t <= 0) {
      throw new IllegalArgumentException("threads must be positive, got " + t);
    }
    if (t != threads) {
      ForkJoinPool old = pool;
      pool = newPool(t);
      threads = t;
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
    run(pieces, i -> (int) ((long) blocks * i / pieces) * g, n, body);
  }

  /**
   * Runs {@code body} over [0, n) in pieces of {@code grain} (the last shorter), taken one at a
   * time by the caller and the pool's workers: more pieces than threads, so that a thread slowed by
   * another process takes fewer (memory-bound loops such as the decode step's dot products).
   */
  public static void forChunks(int n, int grain, RangeBody body) {
    if (n <= 0) {
      return;
    }
    int g = Math.max(1, grain);
    int pieces = (n + g - 1) / g;
    if (pieces <= 1 || threads() <= 1) {
      body.run(0, n);
      return;
    }
    run(pieces, i -> i * g, n, body);
  }

  /** Piece i's first index; piece i ends where piece i + 1 starts (the last at n). */
  private interface Starts {
    int of(int piece);
  }

  private static void run(int pieces, Starts starts, int n, RangeBody body) {
    AtomicInteger next = new AtomicInteger();
    AtomicInteger done = new AtomicInteger();
    AtomicReference<Throwable> failure = new AtomicReference<>();
    Runnable work =
        () -> {
          for (int i = next.getAndIncrement(); i < pieces; i = next.getAndIncrement()) {
            try {
              if (failure.get() == null) {
                body.run(starts.of(i), i + 1 == pieces ? n : starts.of(i + 1));
              }
            } catch (Throwable t) { // handed to the caller, which rethrows it
              failure.compareAndSet(null, t);
            } finally {
              done.incrementAndGet();
            }
          }
        };
    ForkJoinPool p = pool;
    int helpers = Math.min(pieces, threads()) - 1;
    long linger = lingerNanos();
    if (linger > 0) {
      LATEST.set(work);
      for (int h = Math.min(helpers, LINGERING.get()); h < helpers; h++) {
        p.execute(() -> linger(work, linger));
      }
    } else {
      for (int h = 0; h < helpers; h++) {
        p.execute(work);
      }
    }
    work.run();
    long t0 = System.nanoTime();
    while (done.get() < pieces) { // only pieces that other threads have started are left
      if (System.nanoTime() - t0 < SPIN_NANOS) {
        Thread.onSpinWait();
      } else {
        LockSupport.parkNanos(20_000);
      }
    }
    LATEST.compareAndSet(work, null); // keeps no finished call's arrays reachable
    Throwable t = failure.get();
    if (t instanceof RuntimeException re) {
      throw re;
    }
    if (t instanceof Error e) {
      throw e;
    }
    if (t != null) {
      throw new IllegalStateException(t);
    }
  }

  /**
   * Runs {@code work}, then the work of each newer call that comes within the linger time of the
   * last; a call's pieces are taken one at a time, so joining late or finding nothing left is
   * harmless.
   */
  private static void linger(Runnable work, long nanos) {
    work.run();
    LINGERING.incrementAndGet();
    try {
      Runnable last = work;
      long t0 = System.nanoTime();
      while (System.nanoTime() - t0 < nanos) {
        Runnable next = LATEST.get();
        if (next != null && next != last) {
          next.run();
          last = next;
          t0 = System.nanoTime();
        } else {
          Thread.onSpinWait();
        }
      }
    } finally {
      LINGERING.decrementAndGet();
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
