package org.mambaspark.spark;

import java.util.concurrent.atomic.AtomicLong;
import org.apache.spark.SparkContext;
import org.apache.spark.executor.TaskMetrics;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;

/**
 * Bytes a training run moves, from Spark's own task metrics: the serialized task results the driver
 * receives ({@code resultSize}), and the shuffle bytes written and read. Broadcast values are
 * counted by the code that creates them ({@link #addBroadcast}) since Spark reports no metric for
 * them. Listener events arrive asynchronously: {@link #totals} waits for the bus to drain.
 */
public final class TrainingTraffic extends SparkListener {
  private final SparkContext sc;
  private final AtomicLong results = new AtomicLong();
  private final AtomicLong shuffleWritten = new AtomicLong();
  private final AtomicLong shuffleRead = new AtomicLong();
  private final AtomicLong broadcast = new AtomicLong();

  /** Counters at one moment; subtract two for what happened between them. */
  public record Totals(long driverBytes, long resultBytes, long shuffleWritten, long shuffleRead) {
    public Totals minus(Totals o) {
      return new Totals(
          driverBytes - o.driverBytes,
          resultBytes - o.resultBytes,
          shuffleWritten - o.shuffleWritten,
          shuffleRead - o.shuffleRead);
    }

    /** A share of 1/n of each counter (a round of n steps, per step). */
    public Totals per(int n) {
      return new Totals(driverBytes / n, resultBytes / n, shuffleWritten / n, shuffleRead / n);
    }
  }

  private TrainingTraffic(SparkContext sc) {
    this.sc = sc;
  }

  /** A listener on this context; {@link #close} removes it. */
  public static TrainingTraffic register(SparkContext sc) {
    TrainingTraffic t = new TrainingTraffic(sc);
    sc.addSparkListener(t);
    return t;
  }

  @Override
  public void onTaskEnd(SparkListenerTaskEnd e) {
    TaskMetrics m = e.taskMetrics();
    if (m == null) {
      return;
    }
    results.addAndGet(m.resultSize());
    shuffleWritten.addAndGet(m.shuffleWriteMetrics().bytesWritten());
    shuffleRead.addAndGet(m.shuffleReadMetrics().totalBytesRead());
  }

  /**
   * Counts a value the driver broadcast (its serialized size: the driver serves it at least once).
   */
  public void addBroadcast(long bytes) {
    broadcast.addAndGet(bytes);
  }

  /**
   * The counters after every task that ended so far was counted. Driver bytes: task results in plus
   * broadcast values out (stage closures and task descriptions, a few KB a stage, are not counted).
   */
  public Totals totals() {
    try {
      sc.listenerBus().waitUntilEmpty(60_000);
    } catch (java.util.concurrent.TimeoutException e) {
      throw new IllegalStateException("Spark's listener bus did not drain in 60 s", e);
    }
    long r = results.get();
    return new Totals(r + broadcast.get(), r, shuffleWritten.get(), shuffleRead.get());
  }

  /** A value's size as Spark's serializer writes it (what a broadcast of it ships). */
  public static long serializedSize(Object value) {
    return org.apache.spark.SparkEnv.get()
        .serializer()
        .newInstance()
        .serialize(value, scala.reflect.ClassTag$.MODULE$.Any())
        .remaining();
  }

  public void close() {
    sc.removeSparkListener(this);
  }
}
