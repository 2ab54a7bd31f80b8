package org.mambaspark.spark;

import java.lang.ref.SoftReference;
import java.util.ArrayDeque;
import java.util.Iterator;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Fresh float arrays allocated ahead, in the background, for the next step's optimizer shards of
 * this JVM (an executor, or the driver in local mode). An update writes its new shard into fresh
 * arrays the length of its slice ({@link OptimizerShard#successor(SpareArrays, Object)}), and Java
 * zeroes a new array on the allocating thread: for a slice of 65 M floats, three arrays take the
 * update task about 0.1 s on one core. After an update, {@link #prepare} has a daemon thread
 * allocate the next step's arrays of that length; the next {@link #take} of that length gets them
 * when they are ready.
 *
 * <p>Only arrays allocated here and never handed out before leave the reserve: it never recycles a
 * shard's arrays (a recomputation after a lost executor must read the old shards unchanged), so
 * what {@link #take} returns is zeros that nothing else references.
 *
 * <p>Bounded: it holds at most as many sets as this JVM updated slices in its last step (or in the
 * current one, if more), dropping the oldest first, and prepares none while the free heap is less
 * than twice what the sets not yet allocated will take. A ready set is held softly: the garbage
 * collector may take it back rather than run out of memory, and {@link #take} then allocates.
 */
final class SpareArrays {
  private static final Logger LOG = LoggerFactory.getLogger(SpareArrays.class);

  private static final SpareArrays JVM =
      new SpareArrays(
          backgroundThread(),
          () -> {
            Runtime rt = Runtime.getRuntime();
            return rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
          });

  /** One set of arrays: waiting for the background thread, being allocated there, or ready. */
  private static final class Spare implements Runnable {
    private static final int QUEUED = 0, STARTED = 1, CANCELLED = 2;

    final Object step;
    final int count;
    final int length;
    final AtomicInteger state = new AtomicInteger(QUEUED);
    final CompletableFuture<SoftReference<float[][]>> arrays = new CompletableFuture<>();

    Spare(Object step, int count, int length) {
      this.step = step;
      this.count = count;
      this.length = length;
    }

    long bytes() {
      return 4L * count * length;
    }

    /** Allocates the arrays on the background thread, unless cancelled first. */
    @Override
    public void run() {
      if (!state.compareAndSet(QUEUED, STARTED)) {
        return;
      }
      try {
        long t0 = System.nanoTime();
        float[][] a = allocate(count, length);
        LOG.debug(
            "{} spare arrays of {} floats allocated in the background in {} ms",
            count,
            length,
            (System.nanoTime() - t0) / 1_000_000);
        arrays.complete(new SoftReference<>(a));
      } catch (Throwable e) { // an OutOfMemoryError: the taker allocates, and fails if it must
        arrays.completeExceptionally(e);
      }
    }

    /** Dropped: a set not started is never allocated. */
    void cancel() {
      state.compareAndSet(QUEUED, CANCELLED);
    }

    /** The arrays, or null when they are not (or no longer) there: the caller allocates. */
    float[][] claim() {
      // Not started yet (queued behind another set): cancelled, so that it never runs, and the
      // caller allocates at once rather than wait for the queue. Started: waited for, since the
      // rest of the same one-thread allocation ends sooner than a new one on the caller's thread
      // would, and the caller does not hold a second set's memory meanwhile.
      if (state.compareAndSet(QUEUED, CANCELLED)) {
        return null;
      }
      try {
        return arrays.get().get();
      } catch (ExecutionException e) {
        return null;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return null;
      }
    }
  }

  private final Executor background;
  private final LongSupplier freeHeap;
  private final ArrayDeque<Spare> spares = new ArrayDeque<>(); // guarded by this; oldest first
  private Object step; //          guarded by this: the step whose updates prepare now
  private int updated; //          guarded by this: slices updated in that step
  private int updatedBefore; //    guarded by this: slices updated in the step before it

  /**
   * @param background runs the allocations
   * @param freeHeap the bytes this JVM's heap can still allocate
   */
  SpareArrays(Executor background, LongSupplier freeHeap) {
    this.background = background;
    this.freeHeap = freeHeap;
  }

  /** This JVM's reserve. */
  static SpareArrays jvm() {
    return JVM;
  }

  /**
   * {@code count} fresh zero-filled arrays of {@code length} floats for an update of {@code step}:
   * a set of that size prepared before this step when one is there, else allocated on this thread.
   * The sets prepared during this step are left for the next (two slices of one length: the first
   * update's set is the next step's, not the second update's).
   */
  float[][] take(Object step, int count, int length) {
    Spare found = null;
    synchronized (this) {
      for (Iterator<Spare> it = spares.iterator(); it.hasNext(); ) {
        Spare s = it.next();
        if (s.count == count && s.length == length && !s.step.equals(step)) {
          it.remove(); // handed out once
          found = s;
          break;
        }
      }
    }
    float[][] a = found == null ? null : found.claim();
    if (a != null) {
      return a;
    }
    LOG.debug(
        "{} arrays of {} floats allocated by the task ({})",
        count,
        length,
        found == null ? "none prepared" : "the prepared set not started or reclaimed");
    return allocate(count, length);
  }

  /**
   * After an update of {@code step} (any key naming it, equal for the updates of one step): has
   * {@code count} arrays of {@code length} floats allocated in the background for the next step,
   * within the bounds.
   */
  void prepare(Object step, int count, int length) {
    Spare s = new Spare(step, count, length);
    synchronized (this) {
      if (!step.equals(this.step)) {
        updatedBefore = this.step == null ? 0 : updated;
        this.step = step;
        updated = 0;
      }
      updated++;
      int bound = Math.max(updated, updatedBefore);
      while (spares.size() >= bound) {
        spares.removeFirst().cancel(); // the oldest: the least likely to be taken
      }
      long pending = s.bytes();
      for (Spare p : spares) {
        pending += p.arrays.isDone() ? 0 : p.bytes(); // allocated: counted in the heap's use
      }
      long free = freeHeap.getAsLong();
      if (free < 2 * pending) {
        LOG.debug(
            "no spare arrays prepared: {} MB of heap free, {} MB to allocate",
            free >> 20,
            pending >> 20);
        return;
      }
      spares.addLast(s);
    }
    background.execute(s);
  }

  /** Drops every set (the end of a training). */
  synchronized void clear() {
    for (Spare s : spares) {
      s.cancel();
    }
    spares.clear();
  }

  /** The sets held, ready or not (tests). */
  synchronized int held() {
    return spares.size();
  }

  private static float[][] allocate(int count, int length) {
    float[][] a = new float[count][];
    for (int i = 0; i < count; i++) {
      a[i] = new float[length];
    }
    return a;
  }

  /** One daemon thread, started on demand and ended when idle for a minute. */
  private static Executor backgroundThread() {
    ThreadPoolExecutor e =
        new ThreadPoolExecutor(
            1,
            1,
            60,
            TimeUnit.SECONDS,
            new LinkedBlockingQueue<>(),
            r -> {
              Thread t = new Thread(r, "mamba-spare-arrays");
              t.setDaemon(true);
              return t;
            });
    e.allowCoreThreadTimeOut(true);
    return e;
  }
}
