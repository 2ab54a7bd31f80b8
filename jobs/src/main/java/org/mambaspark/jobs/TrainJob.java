package org.mambaspark.jobs;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.HashPartitioner;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.spark.DataParallelTraining;
import org.mambaspark.spark.ShardStart;
import org.mambaspark.spark.ShardedTraining;
import org.mambaspark.spark.TrainingTraffic;
import org.mambaspark.train.AdamW;
import org.mambaspark.train.CheckpointLayout;
import org.mambaspark.train.LrSchedule;
import org.mambaspark.train.ModelAverage;
import org.mambaspark.train.TrainStep;
import org.mambaspark.train.TrainingState;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import scala.Tuple2;

/**
 * Data-parallel training on Spark ({@code spark-submit --class org.mambaspark.jobs.TrainJob}, or
 * {@code bin/mamba train}). {@code --sync gradients} (default): one synchronous AdamW step per
 * global batch with the driver off the data path ({@link ShardedTraining}: gradients
 * reduce-scattered between the executors, the optimizer sharded on them, the weights all-gathered
 * back). {@code --sync average --local-steps H}: periodic model averaging ({@link
 * DataParallelTraining#averageRound}). The step's batch is a function of (seed, step) — a seeded
 * permutation of the sequences, read G at a time — so the update does not depend on the number of
 * partitions, and a resumed run continues the same trajectory.
 *
 * <p>The parts: {@link TrainInput} reads the sequences, {@link TrainCheckpoints} owns the output
 * directory (refusal of another run's output, resume checks, atomic checkpoints), {@link
 * TrainingTraffic} measures the bytes moved, {@link LossChart} draws the curve. Cost model and
 * timers: docs/training.md.
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
      names = {"--input", "--corpus"},
      required = true,
      description =
          "text, JSON lines or Parquet (input_ids or text), read as the inference jobs do")
  String input;

  @Option(
      names = "--input-format",
      description = "text | json | parquet (default: as the inference jobs decide)")
  String inputFormat;

  @Option(
      names = {"--output", "--out"},
      required = true,
      description = "output path (any Hadoop file system)")
  String output;

  @Option(names = "--steps", required = true)
  long steps;

  @Option(
      names = {"--global-batch", "--batch"},
      required = true,
      description = "sequences per step (G)")
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

  @Option(
      names = {"--warmup-steps", "--warmup"},
      defaultValue = "0")
  long warmup;

  @Option(names = "--schedule", defaultValue = "cosine", description = "constant | cosine")
  String schedule;

  @Option(names = "--weight-decay", defaultValue = "0.01")
  float weightDecay;

  @Option(
      names = {"--clip-grad", "--clip"},
      defaultValue = "1.0",
      description = "global gradient-norm clip (0 = off)")
  float clip;

  @Option(names = "--seed", defaultValue = "0")
  long seed;

  @Option(
      names = "--partitions",
      defaultValue = "0",
      description = "0 = Spark's default parallelism")
  int partitions;

  @Option(
      names = {"--checkpoint-every", "--save-every"},
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

  @Option(
      names = "--master",
      description = "Spark master when no spark-submit gave one (embedded default local[*])")
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

  @Option(names = "--overwrite", description = "replace an existing --output")
  boolean overwrite;

  @Option(names = "--strict", description = "fail on the first unusable input row, naming it")
  boolean strict;

  @Option(
      names = "--slices",
      defaultValue = "0",
      description =
          "--sync gradients: optimizer slices (0 = a multiple of the partitions, at most 256 MB each)")
  int slices;

  @Option(
      names = "--bf16-gradients",
      description = "--sync gradients: gradients on the wire as bfloat16 (weights stay fp32)")
  boolean bf16Gradients;

  @Option(
      names = "--state-checkpoint-every",
      defaultValue = "10",
      description =
          "--sync gradients: steps between reliable checkpoints of the executors' optimizer state")
  int stateCheckpointEvery;

  @Option(
      names = "--checkpoint-shard-size",
      defaultValue = "1g",
      description =
          "--sync gradients: the largest model file of a checkpoint (fp32 weights; e.g. 512m, 2g):"
              + " a larger model is written in Hugging Face's sharded layout, each file by one"
              + " executor task")
  String checkpointShardSize;

  /** The metrics file, one JSON line per step, in every checkpoint and at the top of --output. */
  static final String METRICS = "metrics.jsonl";

  /** Per step of this run: loss, lr, gradient norm, tokens/s, timers, bytes, eval loss. */
  public final List<String> metrics = new ArrayList<>();

  /** The metrics of the steps before a resume (from the checkpoint), written ahead of metrics. */
  final List<String> priorMetrics = new ArrayList<>();

  /** (step after which it was measured, eval loss), in order. */
  public final List<double[]> evalLosses = new ArrayList<>();

  /**
   * The trained weights after run() with {@code --sync average}, whose driver holds them; null with
   * {@code --sync gradients}, whose driver never does (the model is in --output).
   */
  public MambaWeights weights;

  /** The trained model's shape. */
  MambaConfig config;

  /** Input rows that could not be used (null or empty), and ids dropped at packing ends. */
  public long unusableRows;

  public long droppedTokens;

  private AdamW adam; //                  --sync average only
  private ShardStart shardStart; //       --sync gradients: where the executors' shards start
  private long startStep; //              --sync gradients: the step it starts from
  private org.apache.hadoop.fs.Path resumedFrom;
  private long skipped;
  private int badInARow;
  private Path tokenizerDir;
  private Map<String, String> identity;
  private MambaConfig intendedConfig; // --init's or --preset's: what a resumed checkpoint must be
  private String tokenizerId; //         --init's tokenizer files, hashed
  private TrainCheckpoints checkpoints;

  public static void main(String[] args) {
    System.exit(JobMain.execute(new TrainJob(), args));
  }

  @Override
  public Integer call() throws IOException {
    String m = SparkSessions.master(master, "local[*]");
    Map<String, String> conf = new HashMap<>();
    if (SparkSessions.local(m) && System.getProperty(MAX_RESULT_SIZE) == null) {
      // the driver is this JVM: Spark's 1 GiB cap on collected results guards nothing here
      conf.put(MAX_RESULT_SIZE, "0");
    }
    try (SparkSessions s = SparkSessions.open("mamba train", m, conf)) {
      run(s.spark);
    }
    return 0;
  }

  /** Trains in the given session. */
  public void run(SparkSession spark) throws IOException {
    validate();
    JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    Configuration hconf = sc.hadoopConfiguration();
    Path work = Files.createTempDirectory("mamba-train");
    try {
      train(spark, sc, hconf, work);
    } finally { // local copies of checkpoints, written to --output already
      org.apache.hadoop.fs.FileUtil.fullyDelete(work.toFile());
    }
  }

  private void train(SparkSession spark, JavaSparkContext sc, Configuration hconf, Path work)
      throws IOException {
    checkpoints = TrainCheckpoints.open(hconf, output, keep, resume, autoResume, overwrite, work);
    Map<String, String> stored = start(hconf, sc.isLocal());
    final int L = seqLen;
    Data d;
    try {
      d = readData(spark, sc);
    } catch (Exception e) { // a row's error in a task arrives inside a SparkException (checked)
      throw TrainInput.rowError(e);
    }
    TrainInput in = d.in();
    JavaRDD<Tuple2<Long, int[]>> indexed = d.indexed();
    JavaRDD<int[]> evalRdd = d.eval();
    long n = d.n(), nEval = d.nEval();
    int p = indexed.getNumPartitions();
    in.sequences.unpersist(false);
    unusableRows = in.unusableRows();
    droppedTokens = in.droppedTokens();
    if (unusableRows > 0) {
      LOG.warn(
          "*** {} rows of {} could not be used (null or empty) and were skipped; --strict fails on"
              + " the first ***",
          unusableRows,
          input);
    }
    if (evalRdd != null && nEval == 0) {
      throw new IllegalArgumentException(
          "the held-out split has no sequence of " + L + " ids: raise --eval-fraction");
    }
    if (n < globalBatch) {
      throw new IllegalArgumentException(
          String.format(
              "--input %s yields %d sequences of %d ids, fewer than one global batch of %d",
              input, n, L, globalBatch));
    }
    identity = TrainCheckpoints.identity(intendedConfig, tokenizerId, input, L, n, globalBatch);
    if (stored != null) {
      Map<String, String> now = new LinkedHashMap<>(identity);
      now.put("seed", Long.toString(seed));
      TrainCheckpoints.checkSameRun(checkpoints.newest(), stored, now);
    }
    LOG.info(
        "training {} on {} sequences of {} ({} rows unusable, {} ids left over from packing) in"
            + " {} partitions ({} held out for eval); {} steps of {} sequences, --sync {}",
        config,
        n,
        L,
        unusableRows,
        droppedTokens,
        p,
        nEval,
        steps,
        globalBatch,
        sync);
    long[] order = d.order();
    LrSchedule sched =
        LrSchedule.of(schedule, lr, Math.min(minLr, lr), Math.min(warmup, steps), steps);
    TrainingTraffic traffic = TrainingTraffic.register(sc.sc());
    try {
      if (sync.equals("average")) {
        trainAveraging(sc, indexed, evalRdd, order, sched, traffic);
      } else {
        trainSharded(sc, indexed, evalRdd, order, sched, traffic, p);
      }
    } finally {
      traffic.close();
      if (evalRdd != null) {
        evalRdd.unpersist();
      }
      indexed.unpersist();
      d.ranks().destroy();
    }
  }

  private void validate() {
    if (globalBatch <= 0 || seqLen < 2 || steps < 0 || microBatch <= 0) {
      throw new IllegalArgumentException(
          "need --global-batch > 0, --micro-batch > 0, --seq-len >= 2, --steps >= 0");
    }
    if (!sync.equals("gradients") && !sync.equals("average")) {
      throw new IllegalArgumentException("--sync must be gradients or average, got " + sync);
    }
    if (localSteps < 1 || slices < 0 || stateCheckpointEvery < 0) {
      throw new IllegalArgumentException(
          "need --local-steps >= 1, --slices >= 0, --state-checkpoint-every >= 0");
    }
    if (!(evalFraction >= 0 && evalFraction < 1) || evalEvery < 0) {
      throw new IllegalArgumentException("need 0 <= --eval-fraction < 1 and --eval-every >= 0");
    }
    if (evalFraction > 0 && evalInput != null) {
      throw new IllegalArgumentException("give --eval-input or --eval-fraction, not both");
    }
    shardBytes(checkpointShardSize);
  }

  /**
   * The training sequences, indexed and placed by the seeded permutation {@code order} (the
   * broadcast {@code ranks} is its inverse), and the held-out ones, counted. Private and never
   * compared or hashed, so its array component is only carried.
   */
  @SuppressWarnings("ArrayRecordComponent")
  private record Data(
      TrainInput in,
      JavaRDD<Tuple2<Long, int[]>> indexed,
      JavaRDD<int[]> eval,
      long n,
      long nEval,
      long[] order,
      Broadcast<int[]> ranks) {}

  private TrainInput read(SparkSession spark, String flag, String path) {
    return TrainInput.read(
        spark,
        flag,
        path,
        inputFormat,
        tokenizerDir == null ? null : tokenizerDir.toString(),
        seqLen,
        config.eosTokenId,
        config.vocabSize,
        strict);
  }

  private Data readData(SparkSession spark, JavaSparkContext sc) {
    TrainInput in = read(spark, "--input", input);
    JavaRDD<int[]> seqRdd = in.sequences.persist(StorageLevel.MEMORY_AND_DISK());
    JavaRDD<int[]> evalRdd = null;
    if (evalFraction > 0) {
      final double f = evalFraction;
      final long sd = seed;
      JavaPairRDD<int[], Long> all = seqRdd.zipWithIndex();
      evalRdd = all.filter(t -> heldOut(sd, t._2(), f)).map(Tuple2::_1);
      seqRdd = all.filter(t -> !heldOut(sd, t._2(), f)).map(Tuple2::_1);
    } else if (evalInput != null) {
      evalRdd = read(spark, "--eval-input", evalInput).sequences;
    }
    int p = partitions > 0 ? partitions : sc.defaultParallelism();
    JavaPairRDD<Long, int[]> numbered =
        seqRdd.zipWithIndex().mapToPair(t -> new Tuple2<>(t._2(), t._1()));
    long n = numbered.count(), nEval = 0;
    long[] order = permutation(n, seed);
    Broadcast<int[]> ranks = sc.broadcast(ranks(order));
    JavaRDD<Tuple2<Long, int[]>> indexed = placed(numbered, ranks, p).cache();
    indexed.count();
    if (evalRdd != null) {
      evalRdd = evalRdd.repartition(p).cache();
      nEval = evalRdd.count();
    }
    return new Data(in, indexed, evalRdd, n, nEval, order, ranks);
  }

  /**
   * The starting point: the newest checkpoint of --output when resuming (its metadata returned, to
   * be checked against this run), else --init's weights, else a new model of --preset. Sets the
   * config, the tokenizer directory and the run's model identity; with {@code --sync average} the
   * driver's weights and optimizer, else where the executors' shards start ({@link ShardStart}: the
   * driver reads config.json and the safetensors headers, never the weights).
   */
  private Map<String, String> start(Configuration hconf, boolean localMode) throws IOException {
    boolean average = sync.equals("average");
    org.apache.hadoop.fs.Path newest = resume || autoResume ? checkpoints.newest() : null;
    if (resume && newest == null) {
      throw new IllegalArgumentException("--resume: no checkpoint-* in " + output);
    }
    Path initDir = null;
    org.apache.hadoop.fs.Path src = null;
    MambaConfig intended;
    if (init != null) {
      src = new org.apache.hadoop.fs.Path(init);
      org.apache.hadoop.fs.FileSystem fs = src.getFileSystem(hconf);
      if (!fs.exists(src)) {
        throw new IllegalArgumentException("--init " + init + ": no such checkpoint directory");
      }
      src = fs.makeQualified(src); // executors resolve a relative path against their own directory
      initDir = average ? checkpoints.local(src, "init") : checkpoints.headers(src, "init");
      intended = org.mambaspark.io.ConfigJson.read(initDir.resolve(Checkpoint.CONFIG));
    } else {
      intended =
          preset == null || preset.equals("tiny")
              ? MambaConfig.builder().vocabSize(256).hiddenSize(64).numLayers(2).build()
              : MambaConfig.preset(preset);
    }
    intendedConfig = intended;
    String holder = driverHolder(localMode);
    if (holder != null) {
      requireDriverHeap(intended, Runtime.getRuntime().maxMemory(), holder);
    }
    tokenizerId = TrainCheckpoints.tokenizerId(initDir, intended.vocabSize);
    AdamW.Settings hyper = new AdamW.Settings(0.9f, 0.999f, 1e-8f, weightDecay);
    Map<String, String> stored = null;
    if (newest != null) {
      Path local =
          average ? checkpoints.local(newest, "resume") : checkpoints.headers(newest, "resume");
      config = org.mambaspark.io.ConfigJson.read(local.resolve(Checkpoint.CONFIG));
      stored = new HashMap<>(TrainingState.metadata(local));
      stored.put("config", config.toString()); // what the checkpoint holds, always
      if (average) {
        weights = Checkpoint.load(local);
        adam = new AdamW(weights, hyper.beta1(), hyper.beta2(), hyper.eps(), hyper.weightDecay());
        TrainingState.load(local, adam);
      } else {
        shardStart =
            ShardStart.read(
                config,
                newest.toString(),
                Checkpoint.locate(local),
                TrainingState.locate(local, MambaWeights.shapes(config)),
                hconf);
        resumedFrom = newest;
      }
      startStep = Long.parseLong(stored.get("step"));
      skipped = Long.parseLong(stored.getOrDefault("skipped_steps", "0"));
      Path m = local.resolve(METRICS);
      if (Files.exists(m)) {
        priorMetrics.addAll(Files.readAllLines(m, StandardCharsets.UTF_8));
      }
      tokenizerDir = local;
      LOG.info("resuming from {} at step {}", newest, startStep);
    } else {
      config = intended;
      if (average) {
        weights =
            initDir != null ? Checkpoint.load(initDir) : Initialization.initialize(intended, seed);
        adam = new AdamW(weights, hyper.beta1(), hyper.beta2(), hyper.eps(), hyper.weightDecay());
      } else {
        shardStart =
            initDir != null
                ? ShardStart.read(config, src.toString(), Checkpoint.locate(initDir), null, hconf)
                : ShardStart.fresh(config, seed);
      }
      tokenizerDir = initDir;
    }
    return stored;
  }

  /** The sequence indices of step s: G consecutive entries of the seeded permutation. */
  private Set<Long> batch(long[] order, long s) {
    Set<Long> b = new HashSet<>();
    for (int i = 0; i < globalBatch; i++) {
      b.add(order[(int) ((s * globalBatch + i) % order.length)]);
    }
    return b;
  }

  private void trainSharded(
      JavaSparkContext sc,
      JavaRDD<Tuple2<Long, int[]>> indexed,
      JavaRDD<int[]> evalRdd,
      long[] order,
      LrSchedule sched,
      TrainingTraffic traffic,
      int p)
      throws IOException {
    org.apache.hadoop.fs.Path stateDir =
        new org.apache.hadoop.fs.Path(checkpoints.out, TrainCheckpoints.STATE_DIR);
    if (stateCheckpointEvery > 0) {
      sc.setCheckpointDir(stateDir.toString());
    }
    AdamW.Settings hyper = new AdamW.Settings(0.9f, 0.999f, 1e-8f, weightDecay);
    ShardedTraining st =
        new ShardedTraining(
            sc, shardStart, hyper, startStep, p, slices, bf16Gradients, stateCheckpointEvery);
    st.countBroadcasts(traffic);
    CheckpointLayout layout =
        new CheckpointLayout(MambaWeights.shapes(config), shardBytes(checkpointShardSize));
    try {
      while (st.step() < steps) {
        long s = st.step();
        TrainingTraffic.Totals before = traffic.totals();
        long t0 = System.nanoTime();
        ShardedTraining.StepResult r =
            st.step(indexed, batch(order, s), microBatch, seqLen, scanChunk, sched, clip);
        double secs = (System.nanoTime() - t0) / 1e9;
        TrainingTraffic.Totals moved = traffic.totals().minus(before);
        List<String> lines = new ArrayList<>();
        lines.add(
            record(
                s,
                r.loss,
                r.lr,
                r.gradNorm,
                r.tokens / secs,
                secs,
                r.maxComputeNanos,
                r.gradientJobNanos,
                r.updateJobNanos,
                moved,
                r.skipped,
                r.executors));
        long done = st.step();
        afterSteps(
            s,
            done,
            lines,
            evalRdd == null ? null : () -> st.evalLoss(evalRdd, microBatch, seqLen, TREE_DEPTH),
            (last, x, chart) ->
                checkpoints.write(
                    done,
                    config,
                    x,
                    last,
                    chart,
                    (local, tmp) -> {
                      layout.writeIndexes(local);
                      st.writeCheckpoint(
                          tmp.toString(),
                          layout,
                          TrainingState.metadata(hyper, done, seed, skipped, identity));
                    },
                    st.needsStart() ? resumedFrom : null));
      }
    } finally {
      st.close();
      if (stateCheckpointEvery > 0) {
        checkpoints.fs.delete(stateDir, true);
      }
    }
  }

  private void trainAveraging(
      JavaSparkContext sc,
      JavaRDD<Tuple2<Long, int[]>> indexed,
      JavaRDD<int[]> evalRdd,
      long[] order,
      LrSchedule sched,
      TrainingTraffic traffic)
      throws IOException {
    checkDriverResults(
        sc.getConf().get(MAX_RESULT_SIZE, "1g"),
        3 * TrainStep.parameterBytes(weights),
        indexed.getNumPartitions());
    DataParallelTraining.Timing timing = new DataParallelTraining.Timing();
    while (adam.step() < steps) {
      long s = adam.step();
      int h = (int) Math.min(localSteps - s % localSteps, steps - s);
      List<Set<Long>> batches = new ArrayList<>();
      for (int k = 0; k < h; k++) {
        batches.add(batch(order, s + k));
      }
      sc.setJobDescription("mamba train: steps " + (s + 1) + "-" + (s + h) + "/" + steps);
      TrainingTraffic.Totals before = traffic.totals();
      long t0 = System.nanoTime();
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
              seqLen,
              scanChunk,
              TREE_DEPTH,
              timing);
      long t1 = System.nanoTime();
      traffic.addBroadcast(timing.broadcastBytes);
      boolean moved = r.applyTo(weights, adam);
      long t2 = System.nanoTime();
      double secs = (t2 - t0) / 1e9;
      TrainingTraffic.Totals bytes = traffic.totals().minus(before);
      long tokens = 0;
      for (long tk : r.tokens) {
        tokens += tk;
      }
      List<String> lines = new ArrayList<>();
      for (int k = 0; k < h; k++) {
        lines.add(
            record(
                s + k,
                r.lossSum[k] / r.tokens[k],
                sched.lr(s + k),
                r.gradNormSum[k] / Math.max(1, r.tokens[k]),
                tokens / secs,
                secs / h,
                r.maxComputeNanos / h,
                (t1 - t0) / h,
                (t2 - t1) / h,
                bytes.per(h),
                r.skipped[k] > 0,
                Set.of()));
      }
      if (!moved) {
        LOG.warn("round ending at step {}: no partition took a finite step", s + h);
      }
      afterSteps(
          s,
          adam.step(),
          lines,
          evalRdd == null
              ? null
              : () ->
                  DataParallelTraining.evalLoss(
                      sc, evalRdd, weights, microBatch, seqLen, TREE_DEPTH),
          (last, x, chart) ->
              checkpoints.write(
                  adam.step(),
                  config,
                  x,
                  last,
                  chart,
                  (local, tmp) -> {
                    Checkpoint.save(weights, local);
                    TrainingState.save(local, adam, x.seed(), x.skipped(), x.identity());
                  },
                  null));
    }
  }

  /** The held-out loss sums {loss, tokens} under the current weights. */
  private interface Eval {
    double[] lossSum();
  }

  /** Writes a checkpoint: the last one, or one on the way. */
  private interface CheckpointWriter {
    void write(
        boolean last,
        TrainCheckpoints.Extras x,
        java.util.function.Consumer<java.nio.file.Path> chart)
        throws IOException;
  }

  /**
   * After the steps from s to done: the eval loss when due (on the last line), the metrics, the
   * non-finite-run guard, and a checkpoint when due.
   */
  private void afterSteps(
      long s, long done, List<String> lines, Eval eval, CheckpointWriter checkpoint)
      throws IOException {
    boolean last = done == steps;
    if (eval != null && (last || (evalEvery > 0 && done / evalEvery > s / evalEvery))) {
      long te = System.nanoTime();
      double[] e = eval.lossSum();
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
      List<String> all = new ArrayList<>(priorMetrics);
      all.addAll(metrics);
      checkpoint.write(
          last,
          new TrainCheckpoints.Extras(seed, skipped, identity, tokenizerDir, all),
          noChart ? null : dir -> drawLossChart(all, dir));
    }
  }

  /**
   * One step's metrics line and log line; counts skipped steps. Steps are numbered from 1 in both
   * (the step just taken), as the eval lines and checkpoints count them. The log line names the
   * executors that computed the gradients, where known.
   */
  private String record(
      long step,
      double loss,
      float lr,
      double gradNorm,
      double tokensPerS,
      double secs,
      long maxComputeNanos,
      long jobNanos,
      long updateNanos,
      TrainingTraffic.Totals moved,
      boolean skip,
      Set<String> executors) {
    long n = step + 1;
    if (skip) {
      skipped++;
      badInARow++;
      LOG.warn(
          "step {}: non-finite loss {} or gradient norm {}: skipped ({} in a row)",
          n,
          loss,
          gradNorm,
          badInARow);
    } else {
      badInARow = 0;
    }
    LOG.info(
        "step {}/{}  loss {}  lr {}  grad norm {}  {} tokens/s{}",
        n,
        steps,
        String.format("%.4f", loss),
        lr,
        String.format("%.3f", gradNorm),
        String.format("%.0f", tokensPerS),
        executors.isEmpty() ? "" : "  gradients on executors " + String.join(", ", executors));
    return String.format(
        "{\"step\":%d,\"loss\":%.6f,\"lr\":%.6g,\"grad_norm\":%.6f,\"tokens_per_s\":%.1f,"
            + "\"seconds\":%.3f,\"task_compute_max_s\":%.4f,\"job_s\":%.4f,\"update_s\":%.4f,"
            + "\"driver_bytes\":%d,\"shuffle_bytes\":%d,\"unusable_rows\":%d,\"skipped\":%b}",
        n,
        loss,
        lr,
        gradNorm,
        tokensPerS,
        secs,
        maxComputeNanos / 1e9,
        jobNanos / 1e9,
        updateNanos / 1e9,
        moved.driverBytes(),
        moved.shuffleWritten(),
        unusableRows,
        skip);
  }

  /** rank[i] = the position of sequence i in the permutation. */
  static int[] ranks(long[] order) {
    int[] rank = new int[order.length];
    for (int k = 0; k < order.length; k++) {
      rank[(int) order[k]] = k;
    }
    return rank;
  }

  /**
   * The (index, sequence) pairs in p partitions, the sequence at position k of the permutation in
   * partition k mod p: a step's G consecutive positions spread evenly over the partitions (a step
   * waits for its largest share), and a recomputed partition (a lost executor) holds the same ones.
   */
  static JavaRDD<Tuple2<Long, int[]>> placed(
      JavaPairRDD<Long, int[]> numbered, Broadcast<int[]> ranks, int p) {
    return numbered
        .mapToPair(t -> new Tuple2<>((long) ranks.value()[(int) (long) t._1()], t))
        .partitionBy(new HashPartitioner(p)) // a Long below 2^31 hashes to itself
        .values();
  }

  static long[] permutation(long n, long seed) {
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
  /**
   * Where the driver's JVM holds the weights and AdamW's two moments in fp32 (12 bytes a parameter)
   * — with {@code --sync average}, or in local mode, where it is also the executor — a heap below
   * the 12 bytes is refused in one line before anything is allocated. With {@code --sync gradients}
   * on separate executors the driver holds O(tensors), whatever the model's size.
   *
   * @param why who holds them, the start of the message
   */
  static void requireDriverHeap(MambaConfig c, long heap, String why) {
    long need = 12 * c.parameterCount();
    if (need > heap) {
      throw new IllegalArgumentException(
          String.format(
              "%s the weights and AdamW's two moments: at least %,d MB for %,d parameters, and it"
                  + " has %,d MB of heap. Give it more (spark-submit --driver-memory, bin/mamba"
                  + " MAMBA_JAVA_OPTS=-Xmx...), or train with --sync gradients on separate"
                  + " executors, which keeps them there",
              why, need >> 20, c.parameterCount(), heap >> 20));
    }
  }

  /** Who holds the weights in the driver's JVM, or null when no one does. */
  private String driverHolder(boolean localMode) {
    if (sync.equals("average")) {
      return "--sync average: the training driver holds";
    }
    return localMode ? "in local mode the driver's JVM is the executor too and holds" : null;
  }

  /** --checkpoint-shard-size in bytes: a size as Spark writes them (512m, 2g), at least 1 KB. */
  static long shardBytes(String size) {
    long b;
    try {
      b = org.apache.spark.network.util.JavaUtils.byteStringAsBytes(size);
    } catch (NumberFormatException e) {
      b = -1;
    }
    if (b < 1024) {
      throw new IllegalArgumentException(
          "--checkpoint-shard-size must be a size of at least 1k (e.g. 512m, 2g), got " + size);
    }
    return b;
  }

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
              config.hiddenSize,
              config.numLayers,
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
