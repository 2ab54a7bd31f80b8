package org.mambaspark.jobs;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.mambaspark.batch.Doc;
import org.mambaspark.batch.DocumentRunner;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.Scoring;
import org.mambaspark.model.Workspace;
import org.mambaspark.spark.MambaSettings;
import org.mambaspark.spark.Task;

/**
 * The score job's throughput against the engine called directly on the same documents in one
 * process: the cost of the Spark glue. Measures, in order: the engine one document per forward
 * (what a loop over {@link Scoring#meanNextTokenLoss} does), the engine batched as the job batches
 * ({@link DocumentRunner}, no Spark), then the score job twice on the same documents as Parquet
 * (first run: the model load included; second: warm). Each after a warm-up.
 */
public final class BenchJob {
  private BenchJob() {}

  /** The figures, tokens per second. */
  public record Result(
      long tokens, double direct, double directBatched, double jobCold, double jobWarm) {}

  /**
   * @param modelDir an existing model, or null for random weights of {@code preset}
   */
  public static Result run(
      Path modelDir,
      String preset,
      int docs,
      int minTokens,
      int maxTokens,
      long seed,
      String master,
      Map<String, String> settings)
      throws IOException {
    if (docs <= 0 || minTokens < 2 || maxTokens < minTokens) {
      throw new IllegalArgumentException(
          "--docs must be positive and 2 <= --min-tokens <= --max-tokens");
    }
    Path tmp = Files.createTempDirectory("mamba-bench-job-");
    try {
      Path model = modelDir;
      if (model == null) {
        model = tmp.resolve("model");
        Files.createDirectories(model);
        MambaConfig c = MambaConfig.preset(preset);
        Checkpoint.save(Initialization.initialize(c, seed), model);
        System.out.printf("random weights of %s written to %s%n", preset, model);
      }
      MambaModel m = new MambaModel(Checkpoint.load(model));
      int V = m.config.vocabSize;
      SplittableRandom rnd = new SplittableRandom(seed);
      int[][] corpus = new int[docs][];
      long tokens = 0;
      for (int d = 0; d < docs; d++) {
        int n = minTokens + rnd.nextInt(maxTokens - minTokens + 1);
        corpus[d] = new int[n];
        for (int i = 0; i < n; i++) {
          corpus[d][i] = rnd.nextInt(V);
        }
        tokens += n;
      }
      System.out.printf(
          Locale.ROOT,
          "%d documents, %,d tokens (%d..%d each); model %s%n",
          docs,
          tokens,
          minTokens,
          maxTokens,
          m.config);

      // 1. the engine, one document per forward
      Workspace ws = new Workspace(m.config);
      Scoring.meanNextTokenLoss(m, ws, corpus[0], 1, corpus[0].length); // warm-up
      long t0 = System.nanoTime();
      long c0 = cpuNanos();
      double lossSum = 0; // Σ cross-entropy, to check the job against
      for (int[] doc : corpus) {
        lossSum += Scoring.meanNextTokenLoss(m, ws, doc, 1, doc.length) * (doc.length - 1);
      }
      double directLoss = lossSum / (tokens - docs);
      double direct = tokens / ((System.nanoTime() - t0) / 1e9);
      double directCpu = tokens / ((cpuNanos() - c0) / 1e9);
      report("engine direct, one document per forward", direct, direct, directCpu, directCpu);

      // 2. the engine, batched as the job batches (no Spark)
      Map<String, String> conf = new LinkedHashMap<>(settings);
      conf.put(MambaSettings.MODEL.key(), model.toString());
      MambaSettings s = MambaSettings.of(conf);
      DocumentRunner runner = new DocumentRunner(m, s.runnerOptions());
      runner.score(List.of(new Doc(corpus[0]))); // warm-up
      List<Doc> all = new ArrayList<>();
      for (int[] doc : corpus) {
        all.add(new Doc(doc));
      }
      t0 = System.nanoTime();
      c0 = cpuNanos();
      runner.score(all);
      double batched = tokens / ((System.nanoTime() - t0) / 1e9);
      double batchedCpu = tokens / ((cpuNanos() - c0) / 1e9);
      report("engine direct, batched as the job batches", batched, direct, batchedCpu, directCpu);

      // 3. the score job, on the same documents as Parquet
      SparkSession spark =
          SparkSession.builder()
              .master(master)
              .appName("mamba bench-job")
              .config("spark.ui.enabled", "false")
              .config("spark.ui.showConsoleProgress", "false")
              .config("spark.driver.host", "127.0.0.1")
              .config("spark.driver.bindAddress", "127.0.0.1")
              .getOrCreate();
      try {
        List<Row> rows = new ArrayList<>();
        for (int d = 0; d < docs; d++) {
          List<Integer> ids = new ArrayList<>(corpus[d].length);
          for (int id : corpus[d]) {
            ids.add(id);
          }
          rows.add(RowFactory.create((long) d, ids));
        }
        StructType schema =
            new StructType()
                .add("id", DataTypes.LongType)
                .add("input_ids", DataTypes.createArrayType(DataTypes.IntegerType));
        int parts = spark.sparkContext().defaultParallelism();
        String input = tmp.resolve("input").toString();
        spark.createDataFrame(rows, schema).repartition(parts).write().parquet(input);
        double[] job = new double[2];
        double jobLoss = Double.NaN;
        for (int run = 0; run < 2; run++) {
          Map<String, String> jc = new LinkedHashMap<>(conf);
          jc.put(MambaSettings.INPUT.key(), input);
          jc.put(MambaSettings.OUTPUT.key(), tmp.resolve("out" + run).toString());
          jc.put(MambaSettings.PROGRESS_INTERVAL.key(), "0");
          long jt0 = System.nanoTime(),
              jc0 = cpuNanos(); // the whole job: checks, read, score, write
          JobSummary sum = MambaJob.run(spark, Task.SCORE, MambaSettings.of(jc));
          double wall = tokens / ((System.nanoTime() - jt0) / 1e9);
          double cpu = tokens / ((cpuNanos() - jc0) / 1e9);
          if (Math.abs(sum.meanLoss() - directLoss) > 1e-4 * Math.max(1, directLoss)) {
            throw new IllegalStateException(
                "the job's mean loss "
                    + sum.meanLoss()
                    + " differs from the engine's "
                    + directLoss);
          }
          jobLoss = sum.meanLoss();
          job[run] = wall;
          report(
              "score job, "
                  + master
                  + " ("
                  + parts
                  + " partitions), "
                  + (run == 0 ? "first run, model load included" : "second run"),
              job[run],
              direct,
              cpu,
              directCpu);
        }
        System.out.printf(
            Locale.ROOT,
            "mean loss: engine %.6f, job %.6f (same documents)%n",
            directLoss,
            jobLoss);
        return new Result(tokens, direct, batched, job[0], job[1]);
      } finally {
        spark.stop();
      }
    } finally {
      deleteRecursively(tmp);
    }
  }

  /**
   * One line: tokens per wall second, and per CPU second of this process (all its threads, Spark's
   * included), which stays meaningful on a machine shared with other work.
   */
  private static void report(
      String what, double tokensPerSecond, double direct, double perCpuSecond, double directCpu) {
    System.out.printf(
        Locale.ROOT,
        "%-64s %,9.0f tokens/s (%5.1f%%) | %,9.0f tokens/CPU-s (%5.1f%%)%n",
        what,
        tokensPerSecond,
        100 * tokensPerSecond / direct,
        perCpuSecond,
        100 * perCpuSecond / directCpu);
  }

  /** CPU time of this process, all threads. */
  public static long cpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
        .getProcessCpuTime();
  }

  private static void deleteRecursively(Path dir) throws IOException {
    try (var s = Files.walk(dir)) {
      for (Path p : s.sorted((a, b) -> b.getNameCount() - a.getNameCount()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }
}
