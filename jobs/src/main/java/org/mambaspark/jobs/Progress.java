package org.mambaspark.jobs;

import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkJobInfo;
import org.apache.spark.SparkStageInfo;
import org.apache.spark.SparkStatusTracker;
import org.apache.spark.Success$;
import org.apache.spark.scheduler.AccumulableInfo;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerExecutorMetricsUpdate;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.mambaspark.spark.MambaMetrics;
import org.mambaspark.spark.Task;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.Tuple4;
import scala.collection.JavaConverters;
import scala.collection.Seq;

/**
 * The driver's progress line on long runs, every {@code spark.mamba.progressInterval} seconds:
 * documents and tokens done (the accumulators, plus running tasks' partial counts from the
 * executors' heartbeats, every {@code spark.executor.heartbeatInterval}), their rates, tasks done
 * of the write (the job group holds the write only: reading the input's schema is not counted), and
 * an ETA.
 */
final class Progress {
  private static final Logger LOG = LoggerFactory.getLogger(Progress.class);

  private final SparkContext sc;
  private final Thread thread;
  private final Running running;

  private Progress(SparkContext sc, Thread thread, Running running) {
    this.sc = sc;
    this.thread = thread;
    this.running = running;
  }

  /**
   * The accumulators of tasks still running, from the executors' heartbeats (Spark merges a task's
   * accumulator updates into the driver's value only when the task ends: without this, a job of a
   * few long partitions would show nothing until the end).
   */
  static final class Running extends SparkListener {
    private final long docsId;
    private final long tokensId;
    private final Map<Long, long[]> byTask = new ConcurrentHashMap<>(); // task id -> (docs, tokens)
    private long doneDocs; // documents of the tasks that succeeded
    private long doneTasks;

    Running(MambaMetrics m) {
      this.docsId = m.documents.id();
      this.tokensId = m.tokens.id();
    }

    @Override
    public void onExecutorMetricsUpdate(SparkListenerExecutorMetricsUpdate u) {
      for (Tuple4<Object, Object, Object, Seq<AccumulableInfo>> t :
          JavaConverters.seqAsJavaList(u.accumUpdates())) {
        long[] v = new long[2];
        for (AccumulableInfo a : JavaConverters.seqAsJavaList(t._4())) {
          if (a.update().isDefined() && a.update().get() instanceof Long n) {
            if (a.id() == docsId) {
              v[0] = n;
            } else if (a.id() == tokensId) {
              v[1] = n;
            }
          }
        }
        byTask.put((Long) t._1(), v);
      }
    }

    @Override
    public void onTaskEnd(SparkListenerTaskEnd e) {
      byTask.remove(e.taskInfo().taskId()); // its updates are in the accumulators now
      if (e.reason() instanceof Success$) {
        for (AccumulableInfo a : JavaConverters.seqAsJavaList(e.taskInfo().accumulables())) {
          if (a.id() == docsId && a.update().isDefined() && a.update().get() instanceof Long n) {
            synchronized (this) {
              doneDocs += n;
              doneTasks++;
            }
          }
        }
      }
    }

    long[] sum() {
      long[] s = new long[2];
      for (long[] v : byTask.values()) {
        s[0] += v[0];
        s[1] += v[1];
      }
      return s;
    }

    /**
     * Running tasks' share of their work, in tasks: each one's documents so far over the mean of
     * the finished tasks' documents (capped below one task), 0 before any task has finished.
     */
    synchronized double runningFraction() {
      if (doneTasks == 0 || doneDocs == 0) {
        return 0;
      }
      double mean = (double) doneDocs / doneTasks;
      double f = 0;
      for (long[] v : byTask.values()) {
        f += Math.min(0.95, v[0] / mean);
      }
      return f;
    }
  }

  static Progress start(
      SparkContext sc, String group, Task task, MambaMetrics m, int intervalSeconds) {
    if (intervalSeconds <= 0) {
      return new Progress(sc, null, null);
    }
    Running running = new Running(m);
    sc.addSparkListener(running);
    long t0 = System.nanoTime();
    Thread t =
        new Thread(
            () -> {
              try {
                while (true) {
                  Thread.sleep(intervalSeconds * 1000L);
                  LOG.info(line(sc, group, task, m, running, (System.nanoTime() - t0) / 1e9));
                }
              } catch (InterruptedException e) {
                // stopped
              }
            },
            "mamba-progress");
    t.setDaemon(true);
    t.start();
    return new Progress(sc, t, running);
  }

  /**
   * One progress line. The ETA is the elapsed time scaled by the work left over the work done,
   * counting running tasks' partial work ({@link Running#runningFraction}), so that it does not
   * jump each time a task finishes; "?" until a first task has.
   */
  static String line(
      SparkContext sc, String group, Task task, MambaMetrics m, Running r, double secs) {
    long[] running = r.sum();
    long docs = m.documents.value() + running[0], tokens = m.tokens.value() + running[1];
    int total = 0, done = 0;
    SparkStatusTracker st = sc.statusTracker();
    for (int jobId : st.getJobIdsForGroup(group)) {
      scala.Option<SparkJobInfo> job = st.getJobInfo(jobId);
      if (job.isEmpty()) {
        continue;
      }
      for (int stageId : job.get().stageIds()) {
        scala.Option<SparkStageInfo> stage = st.getStageInfo(stageId);
        if (stage.isDefined()) {
          total += stage.get().numTasks();
          done += stage.get().numCompletedTasks();
        }
      }
    }
    double progressed = done + r.runningFraction();
    String eta =
        done > 0 && total > done
            ? duration(secs * (total - progressed) / progressed)
            : total > 0 ? "?" : "-";
    return String.format(
        Locale.ROOT,
        "mamba %s: %,d documents (%,.1f/s), %,d tokens (%,.0f/s), %,d errors; tasks %d/%d; %s"
            + " elapsed, ETA %s",
        task.label,
        docs,
        docs / secs,
        tokens,
        tokens / secs,
        m.errors.value(),
        done,
        total,
        duration(secs),
        eta);
  }

  static String duration(double secs) {
    long s = Math.round(secs);
    return s >= 3600
        ? String.format(Locale.ROOT, "%dh%02dm", s / 3600, (s % 3600) / 60)
        : String.format(Locale.ROOT, "%dm%02ds", s / 60, s % 60);
  }

  void stop() {
    if (thread != null) {
      thread.interrupt();
      sc.removeSparkListener(running);
    }
  }
}
