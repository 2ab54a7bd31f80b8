package org.mambaspark.jobs;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.spark.DataParallelTraining;
import org.mambaspark.tokenizer.Tokenizers;
import org.mambaspark.train.AdamW;
import org.mambaspark.train.GradientSum;
import org.mambaspark.train.LrSchedule;
import org.mambaspark.train.ModelAverage;
import org.mambaspark.train.TrainStep;
import org.mambaspark.train.TrainingState;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import scala.Tuple2;

/**
 * Synchronous data-parallel training on Spark ({@code spark-submit --class
 * org.mambaspark.jobs.TrainJob}, or {@code bin/mamba train}): every step broadcasts the weights,
 * each partition sums the gradient of its share of the step's global batch, a treeAggregate
 * combines them, the driver clips and applies AdamW ({@link DataParallelTraining}, {@link
 * TrainStep}). The step's batch is a function of (seed, step) — a seeded permutation of the
 * sequences, read G at a time — so the update does not depend on the number of partitions, and a
 * resumed run continues the same trajectory. Checkpoints go to the output path on any Hadoop file
 * system, written under a temporary name and renamed; the last {@code --keep} are kept.
 *
 * <p>{@code --sync average --local-steps H} trains by periodic model averaging instead ({@link
 * DataParallelTraining#averageRound}). {@code --eval-input} or {@code --eval-fraction} with {@code
 * --eval-every} measure a held-out loss on the executors; the run ends with {@code loss.png}
 * ({@link LossChart}). Cost model and timers: docs/training.md.
 *
 * <p>Input: JSON lines or Parquet with {@code input_ids} (rows of exactly --seq-len ids are used as
 * they are, others are packed with the EOS separator), or text (one document a line, tokenized with
 * the model's tokenizer).
 */
@Command(
    name = "train",
    mixinStandardHelpOptions = true,
    description =
        "Data-parallel training in Spark (embedded local[*] unless --master). Same flags as spark-submit"
            + " --class org.mambaspark.jobs.TrainJob.")
public final class TrainJob implements Callable<Integer> {
  private static final Logger LOG = LoggerFactory.getLogger(TrainJob.class);

  /** The loss curve written at the end of a run, at the top of --output. */
  public static final String LOSS_PNG = "loss.png";

  /** The treeAggregate depth of the gradient (or model) sums. */
  static final int TREE_DEPTH = 2;

  static final String MAX_RESULT_SIZE = "spark.driver.maxResultSize";

  @Option(names = "--init", description = "start from this checkpoint (fine-tuning)")
  String init;

  @Option(
      names = "--preset",
      description = "from scratch: a published shape, or 'tiny' (D=64, 2 layers, V=256)")
  String preset;

  @Option(
      names = "--input",
      required = true,
      description = "JSON lines / Parquet (input_ids or text) or text")
  String input;

  @Option(names = "--output", required = true, description = "output path (any Hadoop file system)")
  String output;

  @Option(names = "--steps", required = true)
  long steps;

  @Option(names = "--global-batch", required = true, description = "sequences per step (G)")
  int globalBatch;

  @Option(
      names = "--micro-batch",
      defaultValue = "4",
      description = "sequences per forward/backward")
  int microBatch;

  @Option(names = "--seq-len", required = true)
  int seqLen;

  @Option(names = "--lr", defaultValue = "1e-3")
  float lr;

  @Option(names = "--min-lr", defaultValue = "0")
  float minLr;

  @Option(names = "--warmup-steps", defaultValue = "0")
  long warmup;

  @Option(names = "--schedule", defaultValue = "cosine", description = "constant | cosine")
  String schedule;

  @Option(names = "--weight-decay", defaultValue = "0.01")
  float weightDecay;

  @Option(names = "--clip-grad", defaultValue = "1.0")
  float clip;

  @Option(names = "--seed", defaultValue = "0")
  long seed;

  @Option(
      names = "--partitions",
      defaultValue = "0",
      description = "0 = Spark's default parallelism")
  int partitions;

  @Option(
      names = "--checkpoint-every",
      defaultValue = "0",
      description = "steps; 0 = only at the end")
  int checkpointEvery;

  @Option(names = "--keep", defaultValue = "3", description = "checkpoints kept")
  int keep;

  @Option(names = "--resume", description = "continue from the newest checkpoint in --output")
  boolean resume;

  @Option(
      names = "--auto-resume",
      description = "resume when --output holds a checkpoint, else start (scheduler retries)")
  boolean autoResume;

  @Option(
      names = "--max-bad-steps",
      defaultValue = "5",
      description = "non-finite steps in a row before stopping")
  int maxBadSteps;

  @Option(names = "--scan-chunk", defaultValue = "256")
  int scanChunk;

  @Option(names = "--master", description = "Spark master for bin/mamba (default local[*])")
  String master;

  @Option(
      names = "--eval-input",
      description = "held-out data for the eval loss (same formats as --input)")
  String evalInput;

  @Option(
      names = "--eval-fraction",
      defaultValue = "0",
      description =
          "hold out this fraction of --input's sequences for the eval loss (chosen from --seed)")
  double evalFraction;

  @Option(
      names = "--eval-every",
      defaultValue = "0",
      description = "eval loss every M steps (and at the end); 0 = only at the end")
  int evalEvery;

  @Option(
      names = "--sync",
      defaultValue = "gradients",
      description =
          "gradients: one synchronous AdamW step per global batch; average: --local-steps local"
              + " steps per partition, then weights and moments averaged")
  String sync;

  @Option(
      names = "--local-steps",
      defaultValue = "4",
      description = "--sync average: local steps between averages (H)")
  int localSteps;

  @Option(names = "--no-chart", description = "skip the loss-curve PNG")
  boolean noChart;

  /** Per step of this run: loss, lr, gradient norm, tokens/s, timers, skipped, eval loss. */
  public final List<String> metrics = new ArrayList<>();

  /** The metrics of the steps before a resume (from the checkpoint), written ahead of metrics. */
  final List<String> priorMetrics = new ArrayList<>();

  /** (step after which it was measured, eval loss), in order. */
  public final List<double[]> evalLosses = new ArrayList<>();

  /** The trained weights (after call()). */
  public MambaWeights weights;

  public static void main(String[] args) {
    System.exit(new CommandLine(new TrainJob()).execute(args));
  }

  @Override
  public Integer call() throws IOException {
    SparkSession active =
        SparkSession.getActiveSession().isDefined()
                && !SparkSession.getActiveSession().get().sparkContext().isStopped()
            ? SparkSession.getActiveSession().get()
            : null;
    SparkSession spark = active;
    if (spark == null) {
      SparkSession.Builder b = SparkSession.builder();
      MambaJob.defaultAppName(b, "mamba train");
      String m = master != null ? master : "local[*]";
      b.master(m);
      if (m.startsWith("local")) {
        b.config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.showConsoleProgress", "false");
        if (System.getProperty(MAX_RESULT_SIZE) == null) {
          // the driver is this JVM: Spark's 1 GiB cap on collected results would stop a 130m-sized
          // model at three partitions (three 516 MB gradients a step) for no memory's sake
          b.config(MAX_RESULT_SIZE, "0");
        }
      }
      spark = b.getOrCreate();
    }
    try {
      run(spark);
    } finally {
      if (active == null) {
        spark.stop();
      }
    }
    return 0;
  }

  /** Trains in the given session. */
  public void run(SparkSession spark) throws IOException {
    if (globalBatch <= 0 || seqLen < 2 || steps < 0 || microBatch <= 0) {
      throw new IllegalArgumentException(
          "need --global-batch > 0, --micro-batch > 0, --seq-len >= 2, --steps >= 0");
    }
    if (!sync.equals("gradients") && !sync.equals("average")) {
      throw new IllegalArgumentException("--sync must be gradients or average, got " + sync);
    }
    if (localSteps < 1) {
      throw new IllegalArgumentException("--local-steps must be >= 1");
    }
    if (!(evalFraction >= 0 && evalFraction < 1) || evalEvery < 0) {
      throw new IllegalArgumentException("need 0 <= --eval-fraction < 1 and --eval-every >= 0");
    }
    if (evalFraction > 0 && evalInput != null) {
      throw new IllegalArgumentException("give --eval-input or --eval-fraction, not both");
    }
    JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    Configuration hconf = sc.hadoopConfiguration();
    org.apache.hadoop.fs.Path out = new org.apache.hadoop.fs.Path(output);
    FileSystem fs = out.getFileSystem(hconf);
    Path work = Files.createTempDirectory("mamba-train");
    AdamW adam;
    long skipped = 0;
    org.apache.hadoop.fs.Path newest = resume || autoResume ? newestCheckpoint(fs, out) : null;
    if (resume && newest == null) {
      throw new IllegalArgumentException("--resume: no checkpoint-* in " + output);
    }
    Path tokenizerSource;
    if (newest != null) {
      Path local = work.resolve("resume");
      fs.copyToLocalFile(false, newest, new org.apache.hadoop.fs.Path(local.toUri()), true);
      weights = Checkpoint.load(local);
      adam = new AdamW(weights, 0.9f, 0.999f, 1e-8f, weightDecay);
      Map<String, String> meta = TrainingState.load(local, adam);
      if (Long.parseLong(meta.getOrDefault("seed", "0")) != seed) {
        throw new IllegalArgumentException(
            "--resume: the run used seed " + meta.get("seed") + ", not " + seed);
      }
      skipped = Long.parseLong(meta.getOrDefault("skipped_steps", "0"));
      Path m = local.resolve("metrics.jsonl");
      if (Files.exists(m)) {
        priorMetrics.addAll(Files.readAllLines(m, StandardCharsets.UTF_8));
      }
      tokenizerSource = local;
      LOG.info("resumed from {} at step {}", newest, adam.step());
    } else if (init != null) {
      Path local = fetch(hconf, init, work.resolve("init"));
      weights = Checkpoint.load(local);
      adam = new AdamW(weights, 0.9f, 0.999f, 1e-8f, weightDecay);
      tokenizerSource = local;
    } else {
      MambaConfig c =
          preset == null || preset.equals("tiny")
              ? MambaConfig.builder().vocabSize(256).hiddenSize(64).numLayers(2).build()
              : MambaConfig.preset(preset);
      weights = Initialization.initialize(c, seed);
      adam = new AdamW(weights, 0.9f, 0.999f, 1e-8f, weightDecay);
      tokenizerSource = null;
    }
    final int V = weights.config.vocabSize;
    final int L = seqLen;
    final int eos = weights.config.eosTokenId;
    final String tokDir = tokenizerSource == null ? null : tokenizerSource.toString();

    // data: (index, sequence of L ids), deterministic; a seeded share held out for eval
    JavaRDD<int[]> seqRdd = sequences(spark, input, tokDir, L, eos, V);
    JavaRDD<int[]> evalRdd = null;
    if (evalFraction > 0) {
      final double f = evalFraction;
      final long sd = seed;
      JavaPairRDD<int[], Long> all = seqRdd.zipWithIndex();
      evalRdd = all.filter(t -> heldOut(sd, t._2(), f)).map(Tuple2::_1);
      seqRdd = all.filter(t -> !heldOut(sd, t._2(), f)).map(Tuple2::_1);
    } else if (evalInput != null) {
      evalRdd = sequences(spark, evalInput, tokDir, L, eos, V);
    }
    JavaRDD<Tuple2<Long, int[]>> indexed =
        seqRdd.zipWithIndex().map(t -> new Tuple2<>(t._2(), t._1()));
    int p = partitions > 0 ? partitions : sc.defaultParallelism();
    indexed = indexed.repartition(p).cache();
    long n = indexed.count();
    long nEval = 0;
    if (evalRdd != null) {
      evalRdd = evalRdd.repartition(p).cache();
      nEval = evalRdd.count();
      if (nEval == 0) {
        throw new IllegalArgumentException(
            "the held-out split has no sequence of " + L + " ids: raise --eval-fraction");
      }
    }
    if (n < globalBatch) {
      throw new IllegalArgumentException(
          input
              + " yields "
              + n
              + " sequences of "
              + L
              + " ids, fewer than one"
              + " global batch of "
              + globalBatch);
    }
    long[] order = permutation(n, seed);
    LrSchedule sched =
        LrSchedule.of(schedule, lr, Math.min(minLr, lr), Math.min(warmup, steps), steps);
    MambaWeights scratch = MambaWeights.zerosLike(weights);
    long paramBytes = TrainStep.parameterBytes(weights);
    boolean average = sync.equals("average");
    long bytesPerStep = bytesPerStep(paramBytes, p, executors(sc), average);
    checkDriverResults(
        sc.getConf().get(MAX_RESULT_SIZE, "1g"), average ? 3 * paramBytes : paramBytes, p);
    LOG.info(
        "training {} on {} sequences of {} in {} partitions ({} held out for eval); {} steps of {}"
            + " sequences, --sync {}{}; {} MB of parameters: about {} MB moved per {} (broadcast"
            + " to {} executors + one {} per partition)",
        weights.config,
        n,
        L,
        p,
        nEval,
        steps,
        globalBatch,
        sync,
        average ? " --local-steps " + localSteps : "",
        paramBytes >> 20,
        bytesPerStep >> 20,
        average ? "round" : "step",
        executors(sc),
        average ? "model with moments" : "gradient");
    int badInARow = 0;
    DataParallelTraining.Timing timing = new DataParallelTraining.Timing();
    while (adam.step() < steps) {
      long s = adam.step();
      long t0 = System.nanoTime();
      int h = average ? (int) Math.min(localSteps - s % localSteps, steps - s) : 1;
      List<Set<Long>> batches = new ArrayList<>();
      for (int k = 0; k < h; k++) {
        Set<Long> batch = new HashSet<>();
        for (int i = 0; i < globalBatch; i++) {
          batch.add(order[(int) (((s + k) * globalBatch + i) % n)]);
        }
        batches.add(batch);
      }
      sc.setJobDescription(
          "mamba train: step " + (s + 1) + (h > 1 ? "-" + (s + h) : "") + "/" + steps);
      List<String> lines = new ArrayList<>();
      if (!average) {
        GradientSum sum =
            DataParallelTraining.stepGradient(
                sc, indexed, weights, batches.get(0), microBatch, L, scanChunk, TREE_DEPTH, timing);
        long t1 = System.nanoTime();
        TrainStep.Applied a = TrainStep.apply(weights, adam, sum, scratch, sched, clip);
        long t2 = System.nanoTime();
        double secs = (t2 - t0) / 1e9;
        if (a.skipped) {
          skipped++;
          badInARow++;
        } else {
          badInARow = 0;
        }
        lines.add(
            metricsLine(
                s,
                a.loss,
                a.lr,
                a.gradNorm,
                sum.tokens / secs,
                secs,
                timing,
                sum.maxComputeNanos,
                t2 - t1,
                bytesPerStep,
                a.skipped));
        logStep(s, a.loss, a.lr, a.gradNorm, sum.tokens / secs, a.skipped, badInARow);
      } else {
        ModelAverage r =
            DataParallelTraining.averageRound(
                sc,
                indexed,
                weights,
                adam,
                batches,
                sched,
                clip,
                microBatch,
                L,
                scanChunk,
                TREE_DEPTH,
                timing);
        long t1 = System.nanoTime();
        boolean moved = r.applyTo(weights, adam);
        long t2 = System.nanoTime();
        double secs = (t2 - t0) / 1e9;
        long tokens = 0;
        for (long tk : r.tokens) {
          tokens += tk;
        }
        for (int k = 0; k < h; k++) {
          boolean skip = r.skipped[k] > 0;
          if (skip) {
            skipped++;
            badInARow++;
          } else {
            badInARow = 0;
          }
          double loss = r.lossSum[k] / r.tokens[k];
          double norm = r.gradNormSum[k] / Math.max(1, r.tokens[k]);
          float lrK = sched.lr(s + k);
          lines.add(
              metricsLine(
                  s + k,
                  loss,
                  lrK,
                  norm,
                  tokens / secs,
                  secs / h,
                  timing,
                  r.maxComputeNanos,
                  t2 - t1,
                  bytesPerStep,
                  skip));
          logStep(s + k, loss, lrK, norm, tokens / secs, skip, badInARow);
        }
        if (!moved) {
          LOG.warn("round ending at step {}: no partition took a finite step", s + h);
        }
      }
      long done = adam.step();
      boolean last = done == steps;
      if (evalRdd != null && (last || (evalEvery > 0 && done / evalEvery > s / evalEvery))) {
        long te = System.nanoTime();
        double[] e = DataParallelTraining.evalLoss(sc, evalRdd, weights, microBatch, L, TREE_DEPTH);
        double evalLoss = e[0] / e[1];
        evalLosses.add(new double[] {done, evalLoss});
        String l = lines.remove(lines.size() - 1);
        lines.add(
            l.substring(0, l.length() - 1)
                + String.format(",\"eval_loss\":%.6f,\"eval_tokens\":%d}", evalLoss, (long) e[1]));
        LOG.info(
            "step {}/{}  eval loss {} over {} held-out tokens ({} s)",
            done,
            steps,
            String.format("%.4f", evalLoss),
            (long) e[1],
            String.format("%.1f", (System.nanoTime() - te) / 1e9));
      }
      metrics.addAll(lines);
      if (badInARow >= maxBadSteps) {
        throw new IllegalStateException(
            badInARow + " non-finite steps in a row at step " + done + ": stopping");
      }
      if (last || (checkpointEvery > 0 && done / checkpointEvery > s / checkpointEvery)) {
        checkpoint(fs, out, work, adam, skipped, tokDir, last);
      }
    }
    if (evalRdd != null) {
      evalRdd.unpersist();
    }
    indexed.unpersist();
  }

  private static long[] permutation(long n, long seed) {
    if (n > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(n + " sequences: too many to index on the driver");
    }
    long[] o = new long[(int) n];
    for (int i = 0; i < o.length; i++) {
      o[i] = i;
    }
    SplittableRandom r = new SplittableRandom(seed);
    for (int i = o.length - 1; i > 0; i--) {
      int j = r.nextInt(i + 1);
      long t = o[i];
      o[i] = o[j];
      o[j] = t;
    }
    return o;
  }

  /** Whether sequence i is in the held-out split: a seeded hash, so any partitioning agrees. */
  static boolean heldOut(long seed, long i, double fraction) {
    long z = seed * 0x9E3779B97F4A7C15L + i * 0xBF58476D1CE4E5B9L + 0x94D049BB133111EBL;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    z ^= z >>> 31;
    return (z >>> 11) * 0x1.0p-53 < fraction;
  }

  /**
   * Bytes moved per step (gradients) or per round (average): the broadcast once per executor
   * (weights; + both AdamW moments when averaging), one gradient (or weights and moments) per
   * partition up the aggregation tree.
   */
  static long bytesPerStep(long paramBytes, int partitions, int executors, boolean average) {
    long unit = average ? 3 * paramBytes : paramBytes;
    return unit * ((long) executors + partitions);
  }

  /**
   * How many partition results the driver collects from Spark's treeAggregate of {@code partitions}
   * at {@code depth}: Spark adds a level only while it shrinks the count (RDD.treeAggregate's
   * loop).
   */
  static int resultsAtDriver(int partitions, int depth) {
    int n = partitions;
    int scale = Math.max((int) Math.ceil(Math.pow(n, 1.0 / depth)), 2);
    while (n > scale + (int) Math.ceil((double) n / scale)) {
      n /= scale;
    }
    return n;
  }

  /**
   * Fails before training when one step's results would exceed {@code spark.driver.maxResultSize}
   * (Spark would abort the first step with the model loaded and the data cached), naming the
   * setting and a value that works.
   *
   * @param resultBytes one partition's result: a gradient, or weights and moments when averaging
   */
  static void checkDriverResults(String maxResultSize, long resultBytes, int partitions) {
    long limit = org.apache.spark.network.util.JavaUtils.byteStringAsBytes(maxResultSize);
    int n = resultsAtDriver(partitions, TREE_DEPTH);
    long need = n * (resultBytes + (1L << 20)); // + serialization overhead
    if (limit > 0 && need > limit) {
      throw new IllegalArgumentException(
          String.format(
              "each step the driver collects %d results of %.1f MB (%d partitions), %d MB in all,"
                  + " above %s = %s: set --conf %s=%dm (or 0 for no limit), or use fewer partitions",
              n,
              resultBytes / 1048576.0,
              partitions,
              need >> 20,
              MAX_RESULT_SIZE,
              maxResultSize,
              MAX_RESULT_SIZE,
              (need >> 20) * 5 / 4 + 64));
    }
  }

  /** Executors that run tasks (local mode: 1, the driver). */
  static int executors(JavaSparkContext sc) {
    int n = sc.sc().getExecutorMemoryStatus().size();
    return sc.isLocal() ? 1 : Math.max(1, n - 1);
  }

  private static String metricsLine(
      long step,
      double loss,
      float lr,
      double gradNorm,
      double tokensPerS,
      double secs,
      DataParallelTraining.Timing t,
      long maxComputeNanos,
      long updateNanos,
      long bytes,
      boolean skipped) {
    return String.format(
        "{\"step\":%d,\"loss\":%.6f,\"lr\":%.6g,\"grad_norm\":%.6f,\"tokens_per_s\":%.1f,"
            + "\"seconds\":%.3f,\"broadcast_s\":%.4f,\"job_s\":%.4f,\"task_compute_max_s\":%.4f,"
            + "\"update_s\":%.4f,\"bytes_moved\":%d,\"skipped\":%b}",
        step,
        loss,
        lr,
        gradNorm,
        tokensPerS,
        secs,
        t.broadcastNanos / 1e9,
        t.jobNanos / 1e9,
        maxComputeNanos / 1e9,
        updateNanos / 1e9,
        bytes,
        skipped);
  }

  private void logStep(
      long s, double loss, float lr, double norm, double tps, boolean skip, int badInARow) {
    if (skip) {
      LOG.warn(
          "step {}: non-finite loss {} or gradient norm {}: skipped ({} in a row)",
          s,
          loss,
          norm,
          badInARow);
    }
    LOG.info(
        "step {}/{}  loss {}  lr {}  grad norm {}  {} tokens/s",
        s + 1,
        steps,
        String.format("%.4f", loss),
        lr,
        String.format("%.3f", norm),
        String.format("%.0f", tps));
  }

  private JavaRDD<int[]> sequences(
      SparkSession spark, String input, String tokDir, int L, int eos, int V) {
    String lower = input.toLowerCase(java.util.Locale.ROOT);
    Dataset<Row> rows;
    if (lower.endsWith(".parquet") || lower.contains(".parquet/")) {
      rows = spark.read().parquet(input);
    } else if (lower.endsWith(".json") || lower.endsWith(".jsonl")) {
      rows = spark.read().json(input);
    } else {
      rows = spark.read().text(input).withColumnRenamed("value", "text");
    }
    boolean ids = Arrays.asList(rows.columns()).contains("input_ids");
    if (!ids && !Arrays.asList(rows.columns()).contains("text")) {
      throw new IllegalArgumentException(
          input + ": needs an input_ids or a text column, has " + Arrays.toString(rows.columns()));
    }
    if (!ids && tokDir == null && V < 256) {
      throw new IllegalArgumentException(
          "text input needs a model with a tokenizer (or a byte-level model)");
    }
    JavaRDD<Row> r = rows.select(ids ? "input_ids" : "text").javaRDD();
    return r.mapPartitions(
        it -> {
          org.mambaspark.tokenizer.Tokenizer tok = null;
          if (!ids) {
            tok =
                tokDir == null
                    ? Tokenizers.byName("bytes")
                    : Tokenizers.forModel(Path.of(tokDir)).orElse(Tokenizers.byName("bytes"));
          }
          List<int[]> outSeqs = new ArrayList<>();
          int[] buf = new int[L];
          int fill = 0;
          while (it.hasNext()) {
            Row row = it.next();
            if (row.isNullAt(0)) {
              continue; // an empty row contributes no tokens
            }
            int[] doc;
            if (ids) {
              List<Object> list = row.getList(0);
              doc = new int[list.size()];
              for (int i = 0; i < doc.length; i++) {
                long v = ((Number) list.get(i)).longValue();
                if (v < 0 || v >= V) {
                  throw new IllegalArgumentException(
                      "input_ids value " + v + " outside the vocabulary [0, " + V + ")");
                }
                doc[i] = (int) v;
              }
              if (doc.length == L) { // already a training sequence: used as it is
                outSeqs.add(doc);
                continue;
              }
            } else {
              doc = tok.encode(row.getString(0));
            }
            for (int k = 0; k <= doc.length; k++) { // pack, EOS between documents
              buf[fill++] = k < doc.length ? doc[k] : eos;
              if (fill == L) {
                outSeqs.add(buf.clone());
                fill = 0;
              }
            }
          }
          if (tok != null) {
            tok.close();
          }
          return outSeqs.iterator();
        });
  }

  private static Path fetch(Configuration hconf, String path, Path local) throws IOException {
    org.apache.hadoop.fs.Path src = new org.apache.hadoop.fs.Path(path);
    FileSystem fs = src.getFileSystem(hconf);
    if (!fs.exists(src)) {
      throw new IllegalArgumentException("--init " + path + ": no such checkpoint directory");
    }
    if ("file".equals(fs.getScheme())) {
      return Path.of(src.toUri().getPath());
    }
    fs.copyToLocalFile(false, src, new org.apache.hadoop.fs.Path(local.toUri()), true);
    return local;
  }

  private static org.apache.hadoop.fs.Path newestCheckpoint(
      FileSystem fs, org.apache.hadoop.fs.Path out) throws IOException {
    if (!fs.exists(out)) {
      return null;
    }
    org.apache.hadoop.fs.Path best = null;
    for (FileStatus st : fs.listStatus(out)) {
      String name = st.getPath().getName();
      if (st.isDirectory()
          && name.matches("checkpoint-\\d+")
          && (best == null || name.compareTo(best.getName()) > 0)) {
        best = st.getPath();
      }
    }
    return best;
  }

  /**
   * Saves locally, copies to out/.checkpoint-N.tmp, renames to out/checkpoint-N; keeps the last
   * `keep`.
   */
  private void checkpoint(
      FileSystem fs,
      org.apache.hadoop.fs.Path out,
      Path work,
      AdamW adam,
      long skipped,
      String tokDir,
      boolean last)
      throws IOException {
    String name = String.format("checkpoint-%08d", adam.step());
    Path local = work.resolve(name);
    Files.createDirectories(local);
    Checkpoint.save(weights, local);
    TrainingState.save(
        local,
        adam,
        seed,
        skipped,
        Map.of("seq_len", Integer.toString(seqLen), "global_batch", Integer.toString(globalBatch)));
    if (tokDir != null) {
      for (String f : new String[] {Tokenizers.TOKENIZER_JSON, Tokenizers.TOKENIZER_CONFIG}) {
        Path t = Path.of(tokDir, f);
        if (Files.exists(t)) {
          Files.copy(t, local.resolve(f), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
      }
    } else if (weights.config.vocabSize >= 256) {
      Tokenizers.writeByteTokenizerMarker(local);
    }
    List<String> all = new ArrayList<>(priorMetrics);
    all.addAll(metrics);
    Files.write(local.resolve("metrics.jsonl"), all, StandardCharsets.UTF_8);
    if (last && !noChart) {
      drawLossChart(all, local);
    }
    fs.mkdirs(out);
    org.apache.hadoop.fs.Path tmp = new org.apache.hadoop.fs.Path(out, "." + name + ".tmp");
    org.apache.hadoop.fs.Path dst = new org.apache.hadoop.fs.Path(out, name);
    fs.delete(tmp, true);
    fs.copyFromLocalFile(false, true, new org.apache.hadoop.fs.Path(local.toUri()), tmp);
    if (fs.exists(dst)) {
      fs.delete(dst, true);
    }
    if (!fs.rename(tmp, dst)) {
      throw new IOException("could not rename " + tmp + " to " + dst);
    }
    LOG.info("checkpoint {} written to {}", adam.step(), dst);
    // keep the newest `keep`
    List<String> names = new ArrayList<>();
    for (FileStatus st : fs.listStatus(out)) {
      if (st.isDirectory() && st.getPath().getName().matches("checkpoint-\\d+")) {
        names.add(st.getPath().getName());
      }
    }
    names.sort(null);
    for (int i = 0; i < names.size() - Math.max(1, keep); i++) {
      fs.delete(new org.apache.hadoop.fs.Path(out, names.get(i)), true);
    }
    if (last) { // the final model at the top of the output, each file renamed into place
      for (String f :
          new String[] {
            Checkpoint.CONFIG,
            Checkpoint.WEIGHTS,
            "metrics.jsonl",
            LOSS_PNG,
            Tokenizers.TOKENIZER_JSON,
            Tokenizers.TOKENIZER_CONFIG
          }) {
        Path src = local.resolve(f);
        if (!Files.exists(src)) {
          continue;
        }
        org.apache.hadoop.fs.Path t = new org.apache.hadoop.fs.Path(out, "." + f + ".tmp");
        org.apache.hadoop.fs.Path d = new org.apache.hadoop.fs.Path(out, f);
        fs.copyFromLocalFile(false, true, new org.apache.hadoop.fs.Path(src.toUri()), t);
        fs.delete(d, false);
        if (!fs.rename(t, d)) {
          throw new UncheckedIOException(new IOException("could not rename " + t + " to " + d));
        }
      }
    }
  }

  /**
   * The loss-curve PNG. A chart is a convenience: when Java2D cannot draw on this host (a headless
   * JRE without its font libraries, as on a bare GPU machine), the run says so loudly and still
   * writes its model and metrics.
   */
  private void drawLossChart(List<String> all, Path local) {
    try {
      LossChart.write(
          all,
          String.format(
              "%s: D=%d, %d layers, %s",
              new org.apache.hadoop.fs.Path(output).getName(),
              weights.config.hiddenSize,
              weights.config.numLayers,
              evalLosses.isEmpty()
                  ? "train loss"
                  : String.format(
                      "eval loss %.3f at step %d",
                      evalLosses.get(evalLosses.size() - 1)[1],
                      (long) evalLosses.get(evalLosses.size() - 1)[0])),
          local.resolve(LOSS_PNG));
    } catch (IOException | RuntimeException | LinkageError | java.awt.AWTError e) {
      LOG.warn(
          "*** loss curve not drawn ({}); the model and metrics.jsonl are written. --no-chart skips"
              + " it. ***",
          e.toString());
    }
  }
}
