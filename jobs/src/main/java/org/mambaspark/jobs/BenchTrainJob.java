package org.mambaspark.jobs;

import com.sun.management.GarbageCollectionNotificationInfo;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.lang.management.MemoryUsage;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicLong;
import javax.management.ListenerNotFoundException;
import javax.management.Notification;
import javax.management.NotificationEmitter;
import javax.management.NotificationListener;
import javax.management.openmbean.CompositeData;
import org.apache.spark.sql.SparkSession;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code bin/mamba bench-train-job}: the training job for P = 1, 2, ... executors at the same
 * global batch, each executor a separate JVM with its own C cores ({@code local-cluster[P,C,MB]},
 * one partition per executor, one task at a time on all C cores). One line per P: the step time,
 * the longest task's gradient compute, the bytes through the driver and through the shuffle a step
 * (Spark's task metrics, {@link org.mambaspark.spark.TrainingTraffic}), tokens/s; medians over the
 * timed steps. Random token ids; the first --warmup steps are not timed. The output directories are
 * fresh temporary ones.
 */
@Command(
    name = "bench-train-job",
    mixinStandardHelpOptions = true,
    description =
        "Training-job step time, compute, driver and shuffle bytes and tokens/s for P = 1, 2, ..."
            + " separate executor JVMs (local-cluster[P,C,MB]) at equal global batch.")
public final class BenchTrainJob implements Callable<Integer> {
  @Option(names = "--init", description = "model to train (default: random, --hidden-size)")
  String init;

  @Option(names = "--preset", description = "a random model of this published shape")
  String preset;

  @Option(names = "--hidden-size", defaultValue = "192")
  int hiddenSize;

  @Option(names = "--layers", defaultValue = "4")
  int layers;

  @Option(names = "--executors", defaultValue = "1,2", split = ",", description = "P values")
  int[] executors;

  @Option(names = "--global-batch", defaultValue = "32")
  int globalBatch;

  @Option(names = "--micro-batch", defaultValue = "8")
  int microBatch;

  @Option(names = "--seq-len", defaultValue = "256")
  int seqLen;

  @Option(names = "--steps", defaultValue = "10", description = "timed steps")
  int steps;

  @Option(names = "--warmup", defaultValue = "3", description = "untimed first steps")
  int warmup;

  @Option(names = "--sync", defaultValue = "gradients")
  String sync;

  @Option(names = "--local-steps", defaultValue = "4")
  int localSteps;

  @Option(
      names = "--slices",
      defaultValue = "0",
      description = "optimizer slices (0 = a multiple of P, at most 256 MB each)")
  int slices;

  @Option(names = "--bf16-gradients", description = "gradients on the wire as bfloat16")
  boolean bf16;

  @Option(names = "--executor-memory-mb", defaultValue = "1024")
  int executorMemoryMb;

  @Option(
      names = "--executor-cores",
      defaultValue = "1",
      description =
          "cores of each executor JVM, all for its one task (spark.task.cpus): the engine's threads")
  int executorCores;

  @Option(
      names = "--executor-java-options",
      defaultValue = "",
      description = "more JVM options for the executors (e.g. -Dmamba.backend=gpu)")
  String executorJavaOptions;

  @Option(
      names = "--master-template",
      defaultValue = "local-cluster[%d,%d,%d]",
      description = "Spark master, %%d = P, the executor cores and the worker memory (MB)")
  String masterTemplate;

  @Override
  public Integer call() throws Exception {
    Path work = Files.createTempDirectory("mamba-bench-train");
    try {
      bench(work);
    } finally { // the random model, the input and the runs' outputs
      org.apache.hadoop.fs.FileUtil.fullyDelete(work.toFile());
    }
    return 0;
  }

  private void bench(Path work) throws Exception {
    Path model;
    if (init != null) {
      model = Path.of(init);
    } else {
      model = work.resolve("model");
      Files.createDirectories(model);
      MambaConfig c =
          preset != null
              ? MambaConfig.preset(preset)
              : MambaConfig.builder()
                  .vocabSize(256)
                  .hiddenSize(hiddenSize)
                  .numLayers(layers)
                  .build();
      Checkpoint.save(Initialization.initialize(c, 1), model);
    }
    MambaConfig config = Checkpoint.validate(model); // headers only: the driver holds no weights
    Path input = work.resolve("ids.jsonl");
    SplittableRandom r = new SplittableRandom(1);
    List<String> lines = new ArrayList<>();
    for (int i = 0; i < 4 * globalBatch; i++) {
      lines.add(
          "{\"input_ids\": "
              + Arrays.toString(r.ints(seqLen, 0, config.vocabSize).toArray())
              + "}");
    }
    Files.write(input, lines, StandardCharsets.UTF_8);
    if (masterTemplate.startsWith("local-cluster")) {
      // local-cluster launches executor JVMs with this JVM's classpath only in Spark's test mode
      System.setProperty("spark.testing", "1");
      if (System.getProperty("spark.test.home") == null) {
        System.setProperty("spark.test.home", work.toString());
      }
      if (System.getenv("SPARK_LOCAL_IP") == null) {
        System.err.println(
            "note: SPARK_LOCAL_IP is not set: the in-process master and workers bind the"
                + " machine's address (set SPARK_LOCAL_IP=127.0.0.1 for loopback only)");
      }
    }
    long paramBytes = 4 * config.parameterCount();
    System.out.printf(
        Locale.ROOT,
        "model %s, %,d parameters (%d bytes); global batch %d x %d tokens, micro-batch %d;"
            + " --sync %s%s%s; medians of %d timed steps after %d warm-up; driver_bytes and"
            + " shuffle_bytes from Spark's task metrics (results in + broadcasts out; shuffle"
            + " written); driver_heap_mb: the driver's heap after its garbage collections"
            + " during the run, the largest (an upper bound of what it holds; -Xmx %d MB)%n",
        config,
        paramBytes / 4,
        paramBytes,
        globalBatch,
        seqLen,
        microBatch,
        sync,
        sync.equals("average") ? " --local-steps " + localSteps : "",
        bf16 ? " --bf16-gradients" : "",
        steps,
        warmup,
        Runtime.getRuntime().maxMemory() >> 20);
    // the executor's heap within its worker's memory (the rest: the JVM's own and native memory)
    String executorMemory = (executorMemoryMb * 3 / 4) + "m";
    for (int p : executors) {
      String master =
          String.format(Locale.ROOT, masterTemplate, p, executorCores, executorMemoryMb);
      SparkSession spark =
          SparkSession.builder()
              .master(master)
              .appName("mamba bench-train-job P=" + p)
              .config("spark.executorEnv.SPARK_SCALA_VERSION", "2.12")
              .config("spark.driver.host", "127.0.0.1")
              .config("spark.driver.bindAddress", "127.0.0.1")
              .config("spark.ui.enabled", "false")
              .config("spark.ui.showConsoleProgress", "false")
              .config("spark.executor.cores", Integer.toString(executorCores))
              .config("spark.task.cpus", Integer.toString(executorCores))
              .config("spark.executor.memory", executorMemory)
              .config(
                  "spark.executor.extraJavaOptions",
                  SparkMasters.withOption(
                      SparkMasters.withOption(
                          SparkMasters.withOption(executorJavaOptions, SparkMasters.VECTOR_MODULE),
                          SparkMasters.HUGE_PAGES),
                      SparkMasters.preTouch(executorMemory)))
              .getOrCreate();
      try {
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (master.startsWith("local-cluster")
            && spark.sparkContext().statusTracker().getExecutorInfos().length < p + 1) {
          if (System.nanoTime() > deadline) {
            throw new IllegalStateException(p + " executors did not register in 120 s");
          }
          Thread.sleep(200);
        }
        TrainJob j = new TrainJob();
        new CommandLine(j)
            .parseArgs(
                "--init",
                model.toString(),
                "--input",
                input.toString(),
                "--output",
                work.resolve("out-" + p).toString(),
                "--steps",
                Integer.toString(warmup + steps),
                "--global-batch",
                Integer.toString(globalBatch),
                "--micro-batch",
                Integer.toString(microBatch),
                "--seq-len",
                Integer.toString(seqLen),
                "--schedule",
                "constant",
                "--partitions",
                Integer.toString(p),
                "--sync",
                sync,
                "--local-steps",
                Integer.toString(localSteps),
                "--slices",
                Integer.toString(slices),
                "--no-chart");
        if (bf16) {
          j.bf16Gradients = true;
        }
        System.gc(); // what came before (the model written above) is not this run's
        long heapAfterGc;
        try (HeapAfterGc heap = new HeapAfterGc()) {
          j.run(spark);
          heapAfterGc = heap.largest();
        }
        List<String> timed = j.metrics.subList(warmup, j.metrics.size());
        double step = median(timed, "seconds");
        System.out.printf(
            Locale.ROOT,
            "P=%d step_s=%.3f compute_s=%.3f driver_bytes=%.0f shuffle_bytes=%.0f tokens_per_s=%.0f"
                + " driver_heap_mb=%d%n",
            p,
            step,
            median(timed, "task_compute_max_s"),
            median(timed, "driver_bytes"),
            median(timed, "shuffle_bytes"),
            (double) globalBatch * (seqLen - 1) / step,
            heapAfterGc >> 20);
      } finally {
        spark.stop();
      }
    }
  }

  /**
   * The largest heap use this JVM's garbage collections left behind while open: what the driver
   * holds, plus what its collections had not reached yet. Listens to the collectors' notifications.
   */
  private static final class HeapAfterGc implements AutoCloseable, NotificationListener {
    private final AtomicLong largest = new AtomicLong();

    HeapAfterGc() {
      for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
        ((NotificationEmitter) gc).addNotificationListener(this, null, null);
      }
    }

    @Override
    public void handleNotification(Notification n, Object handback) {
      if (!n.getType().equals(GarbageCollectionNotificationInfo.GARBAGE_COLLECTION_NOTIFICATION)) {
        return;
      }
      GarbageCollectionNotificationInfo info =
          GarbageCollectionNotificationInfo.from((CompositeData) n.getUserData());
      long used = 0;
      for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
        MemoryUsage u = info.getGcInfo().getMemoryUsageAfterGc().get(pool.getName());
        if (u != null && pool.getType() == MemoryType.HEAP) {
          used += u.getUsed();
        }
      }
      largest.accumulateAndGet(used, Math::max);
    }

    long largest() {
      return largest.get();
    }

    @Override
    public void close() {
      for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
        try {
          ((NotificationEmitter) gc).removeNotificationListener(this);
        } catch (ListenerNotFoundException e) {
          // never added: nothing to remove
        }
      }
    }
  }

  private static double median(List<String> lines, String key) {
    double[] v = new double[lines.size()];
    for (int i = 0; i < v.length; i++) {
      v[i] = LossChart.number(lines.get(i), key);
    }
    Arrays.sort(v);
    return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  }
}
