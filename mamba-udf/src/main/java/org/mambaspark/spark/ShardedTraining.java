package org.mambaspark.spark;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.function.Consumer;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.HashPartitioner;
import org.apache.spark.SparkEnv;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.storage.StorageLevel;
import org.apache.spark.util.SerializableConfiguration;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.ModelRunner;
import org.mambaspark.train.AdamW;
import org.mambaspark.train.CheckpointLayout;
import org.mambaspark.train.GradientSum;
import org.mambaspark.train.Gradients;
import org.mambaspark.train.LrSchedule;
import org.mambaspark.train.ParameterSlices;
import org.mambaspark.train.TrainStep;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.Tuple2;

/**
 * Synchronous data-parallel AdamW with the driver off the data path (ZeRO stage 1 on Spark's block
 * manager). The parameters are cut into S slices ({@link ParameterSlices}); slice s's weights and
 * moments live in partition s of a persisted RDD on the executors ({@link OptimizerShard}). A step:
 *
 * <ol>
 *   <li><b>gradients</b>: every data partition computes the gradient sum of its share of the batch
 *       on its executor's cached model; the sum stays cached where it was computed, as S {@link
 *       SliceRecord}s over its arrays. With several partitions a second job cuts each into S cached
 *       blocks where it lies (tasks placed by the cache, no copy), so that a reducer fetches its
 *       slice and not a whole gradient;
 *   <li><b>reduce-scatter</b>: reducer s reads slice s of every partition through a narrow
 *       dependency (the objects themselves where a block lives on its executor, fetched where it
 *       lives on another) and adds them in partition-index order (so the sum does not depend on
 *       task timing or placement). S small numbers reach the driver (Σ g², loss, tokens), which
 *       decides the clip factor, the non-finite guard and the learning rate. With one data
 *       partition there is no such job: its gradient is the sum, so its task reduces each slice
 *       where it computed it, as a reducer would (Σ g²; bf16 gradients rounded as on the wire), and
 *       the S small numbers come back with the gradients job;
 *   <li><b>sharded AdamW</b>: task s updates its slice's weights and moments (a new shard: a cached
 *       one is never changed in place, and its fresh arrays may have been allocated ahead, in the
 *       background: {@link SpareArrays}), reading the reduced slice s divided by the batch's tokens
 *       and clipped;
 *   <li><b>all-gather</b>: the updated weight slices are cached beside their shards (the same
 *       arrays); each data partition reads all S of them through a narrow dependency and writes
 *       them into its executor's cached model in place the next time it computes.
 * </ol>
 *
 * No shuffle: nothing of a step is written to disk to be moved, and nothing co-located is copied.
 *
 * <p>The gradient function is deterministic and side-effect free and the state changes only through
 * new RDDs, so a retried task or a recomputed partition gives the same floats. The state is
 * recoverable: its lineage goes back to the starting point (each shard made on its executor by
 * {@link ShardStart}: initialised, or read from a checkpoint) through the steps' gradients; every
 * {@code stateCheckpointEvery} steps it is written with Spark's reliable RDD checkpoint (the
 * context's checkpoint directory), which truncates the lineage. A lost executor's blocks are
 * recomputed from these. The driver never holds the weights or the moments: the shards start on the
 * executors and {@link #writeCheckpoint} writes checkpoints from them; what the driver keeps is
 * O(tensors + S).
 */
public final class ShardedTraining {
  private static final Logger LOG = LoggerFactory.getLogger(ShardedTraining.class);
  private static final java.util.regex.Pattern COMMA = java.util.regex.Pattern.compile(",");

  /** One step's outcome, from the reducers' small results. */
  public static final class StepResult {
    public double loss;
    public double gradNorm;
    public float lr;
    public boolean skipped;
    public long tokens;

    /**
     * The Spark executor ids whose tasks computed the step's gradients ("driver" in local mode).
     */
    public final Set<String> executors = new TreeSet<>();

    /** The longest partition's gradient compute, and the two Spark jobs' wall times. */
    public long maxComputeNanos;

    public long gradientJobNanos;
    public long updateJobNanos;
  }

  private final JavaSparkContext sc;
  private final MambaConfig config;
  private final ParameterSlices slices;
  private final AdamW.Settings hyper;
  private final int partitions;
  private final boolean bf16;
  private final int stateCheckpointEvery;
  private final String run = UUID.randomUUID().toString();
  private final List<Tuple2<Long, Broadcast<?>>> lineage = new ArrayList<>();
  private JavaPairRDD<Integer, OptimizerShard> state; // partition s holds slice s
  private JavaRDD<SliceRecord> weights; // partition s: slice s's weights (the state's arrays)
  private JavaRDD<SliceRecord> gathered; // partition p reads every partition of weights
  private JavaPairRDD<Integer, OptimizerShard> checkpointed; // the last state written reliably
  private long step;
  private TrainingTraffic traffic;

  /**
   * Starts from {@code start}: each shard is made by its own task where it lives (a fresh model's
   * values for its slice, or its byte ranges of a checkpoint), so the driver never holds the
   * weights or the moments.
   *
   * @param step the optimizer's step at the start (a resumed run's)
   * @param partitions the data partitions the weights are gathered to
   * @param sliceCount S, or 0 for the default: a multiple of the partitions, at most 256 MB each
   *     ({@link ParameterSlices#of(List, int, int)})
   * @param bf16 gradients on the wire as bfloat16 (weights and moments stay fp32)
   * @param stateCheckpointEvery steps between reliable checkpoints of the state (needs the
   *     context's checkpoint directory); 0 = never
   */
  public ShardedTraining(
      JavaSparkContext sc,
      ShardStart start,
      AdamW.Settings hyper,
      long step,
      int partitions,
      int sliceCount,
      boolean bf16,
      int stateCheckpointEvery) {
    this.sc = sc;
    this.config = start.config();
    this.slices = ParameterSlices.of(MambaWeights.shapes(config), sliceCount, partitions);
    this.hyper = hyper;
    this.partitions = partitions;
    this.bf16 = bf16;
    this.stateCheckpointEvery = stateCheckpointEvery;
    this.step = step;
    if (stateCheckpointEvery > 0 && !sc.getCheckpointDir().isPresent()) {
      throw new IllegalArgumentException(
          "the sharded optimizer checkpoints its state every "
              + stateCheckpointEvery
              + " steps: set the Spark checkpoint directory first");
    }
    int S = slices.count();
    List<Integer> ids = new ArrayList<>();
    for (int s = 0; s < S; s++) {
      ids.add(s);
    }
    final ParameterSlices sl = slices;
    setState(
        JavaPairRDD.fromJavaRDD(
            sc.parallelize(ids, S).map(s -> new Tuple2<>(s, start.make(sl, s)))));
    sc.setJobDescription("mamba train: the optimizer's shards made on the executors");
    weights.count(); // S tasks in parallel, not one gradient task reading them one by one
    LOG.info(
        "sharded AdamW: {} parameters in {} slices of about {} MB, made on the executors; {} data"
            + " partitions; gradients as {}",
        slices.parameters(),
        S,
        String.format("%.1f", 4.0 * slices.parameters() / S / 1e6),
        partitions,
        bf16 ? "bf16" : "fp32");
  }

  /** Counts the values this training broadcasts from now on. */
  public void countBroadcasts(TrainingTraffic t) {
    traffic = t;
  }

  public ParameterSlices slices() {
    return slices;
  }

  /** Steps taken (skipped ones included). */
  public long step() {
    return step;
  }

  /** The weights version the executors' cached models hold after this many steps. */
  private String version() {
    return run + ":" + step;
  }

  /**
   * One step on the sequences whose index is in {@code batch}.
   *
   * @param data (index, sequence of L ids) in {@code partitions} partitions, cached by the caller
   */
  public StepResult step(
      JavaRDD<Tuple2<Long, int[]>> data,
      Set<Long> batch,
      int microBatch,
      int L,
      int scanChunk,
      LrSchedule schedule,
      float clip) {
    requirePartitions(data);
    long t0 = System.nanoTime();
    Broadcast<Set<Long>> indices = sc.broadcast(batch);
    if (traffic != null) {
      traffic.addBroadcast(TrainingTraffic.serializedSize(batch));
    }
    lineage.add(new Tuple2<>(step, indices));
    final String version = version();
    final MambaConfig c = config;
    final ParameterSlices sl = slices;
    final boolean half = bf16;
    final int S = slices.count();
    final boolean onePartition = partitions == 1;
    final long computing = step + 1;
    JavaRDD<SliceRecord> grads =
        data.zipPartitions(
            gathered,
            (Iterator<Tuple2<Long, int[]>> it, Iterator<SliceRecord> weights) -> {
              List<int[]> seqs = DataParallelTraining.mine(it, indices.value());
              if (seqs.isEmpty()) {
                return Collections.emptyIterator();
              }
              GradientSum g;
              long g0 = System.nanoTime();
              ModelRunner runner = TrainingRunners.acquire(version, c, () -> gather(sl, weights));
              long g1 = System.nanoTime();
              try {
                g = TrainStep.gradient(runner, seqs, microBatch, L, scanChunk);
              } finally {
                TrainingRunners.release();
              }
              long g2 = System.nanoTime();
              String executor = SparkEnv.get().executorId();
              List<SliceRecord> out = new ArrayList<>(S);
              for (int s = 0; s < S; s++) {
                // the partition index is set where the slices are cut (scatter): this code may run
                // in another RDD's task, recomputing a lost block
                SliceRecord r = SliceRecord.gradient(g, sl, s, -1, executor, half);
                // one partition's sum is its own gradient: reduced here, as its reducer would
                out.add(onePartition ? sumInOrder(Collections.singletonList(r), false) : r);
              }
              LOG.debug(
                  "step {}: weights {} ms, gradient {} ms (compute {} ms), its slices {} ms",
                  computing,
                  (g1 - g0) / 1_000_000,
                  (g2 - g1) / 1_000_000,
                  g.computeNanos / 1_000_000,
                  (System.nanoTime() - g2) / 1_000_000);
              return out.iterator();
            });
    grads.persist(StorageLevel.MEMORY_AND_DISK());
    sc.setJobDescription("mamba train: step " + (step + 1) + ": gradients");
    JavaRDD<SliceRecord> reduced;
    List<Tuple2<double[], String>> stats;
    List<JavaRDD<SliceRecord>> bySlice;
    if (onePartition) {
      // the gradients' records are the reduced slices: their small numbers come with this job,
      // and update s reads slice s of the cached gradient through a narrow dependency
      stats = grads.map(ShardedTraining::stats).collect();
      bySlice = scatter(grads);
      reduced = union(bySlice);
    } else {
      grads.count();
      bySlice = scatter(grads);
      List<JavaRDD<SliceRecord>> sums = new ArrayList<>(S);
      for (JavaRDD<SliceRecord> slice : bySlice) {
        // reducer s: partition s, narrow on slice s of each gradient
        sums.add(slice.coalesce(1, false));
      }
      reduced = union(sums).mapPartitions(ShardedTraining::sumInOrder, true);
      reduced.persist(StorageLevel.MEMORY_AND_DISK());
      sc.setJobDescription("mamba train: step " + (step + 1) + ": reduce-scatter");
      stats = reduced.map(ShardedTraining::stats).collect();
    }
    long t1 = System.nanoTime();

    StepResult r = new StepResult();
    double sumSquares = 0, lossSum = Double.NaN;
    for (Tuple2<double[], String> stat : stats) {
      double[] st = stat._1();
      r.executors.addAll(Arrays.asList(COMMA.split(stat._2())));
      sumSquares += st[0];
      lossSum = st[1];
      r.tokens = (long) st[2];
      r.maxComputeNanos = Math.max(r.maxComputeNanos, (long) st[3]);
    }
    r.loss = lossSum / r.tokens;
    r.gradNorm = Math.sqrt(sumSquares);
    r.lr = schedule.lr(step);
    r.skipped = !Double.isFinite(r.loss) || !Double.isFinite(r.gradNorm);
    double coef = clip / (r.gradNorm + 1e-6); // torch.nn.utils.clip_grad_norm_
    // the sums are read divided by the batch's tokens, as TrainStep.apply divides the
    // single-process sum, and clipped
    float perToken = (float) (1.0 / r.tokens);
    final float scale = clip > 0 && coef < 1 ? perToken * (float) coef : perToken;
    final boolean skip = r.skipped;
    final long t = step + 1;
    final float lr = r.lr;
    final AdamW.Settings h = hyper;
    final String updating = run + ":" + t; // names this step to the executors' spare arrays
    JavaPairRDD<Integer, OptimizerShard> next =
        JavaPairRDD.fromJavaRDD(
            state.zipPartitions(
                reduced,
                (Iterator<Tuple2<Integer, OptimizerShard>> st, Iterator<SliceRecord> red) -> {
                  Tuple2<Integer, OptimizerShard> old = st.next();
                  if (skip || !red.hasNext()) {
                    return Collections.singletonList(old).iterator();
                  }
                  long a0 = System.nanoTime();
                  OptimizerShard o = old._2(), n = o.successor(SpareArrays.jvm(), updating);
                  long a1 = System.nanoTime();
                  // read from the cached shard and the cached gradient sum, written to fresh
                  // arrays: both stay as they were for a recomputation; moments never stepped
                  // are the successor's zeros
                  sl.adamw(
                      o.slice,
                      h,
                      t,
                      lr,
                      o.w,
                      o.m == null ? n.m : o.m,
                      o.v == null ? n.v : o.v,
                      red.next().pieces(),
                      scale,
                      n.w,
                      n.m,
                      n.v);
                  long a2 = System.nanoTime();
                  // the next step's update of this slice length finds its arrays ready
                  SpareArrays.jvm().prepare(updating, OptimizerShard.ARRAYS, n.w.length);
                  LOG.debug(
                      "step {}: slice {}'s new shard: arrays {} ms, update {} ms",
                      t,
                      n.slice,
                      (a1 - a0) / 1_000_000,
                      (a2 - a1) / 1_000_000);
                  return Collections.singletonList(new Tuple2<>(n.slice, n)).iterator();
                }));
    step = t;
    JavaRDD<SliceRecord> previousWeights = weights;
    JavaPairRDD<Integer, OptimizerShard> previous = setState(next);
    sc.setJobDescription("mamba train: step " + t + ": sharded AdamW");
    weights.count(); // caches the new shards and their weight slices
    long t2 = System.nanoTime();
    previous.unpersist(false); // recomputable from its lineage; not needed once next is cached
    previousWeights.unpersist(false);
    reduced.unpersist(false);
    for (JavaRDD<SliceRecord> one : bySlice) {
      one.unpersist(false);
    }
    grads.unpersist(false);
    afterMaterialized();
    r.gradientJobNanos = t1 - t0;
    r.updateJobNanos = t2 - t1;
    return r;
  }

  /**
   * Mean next-token loss of every sequence of {@code data} (no gradient) under the current weights,
   * gathered to the data's partitions like a step's: {loss sum, tokens}.
   */
  public double[] evalLoss(JavaRDD<int[]> data, int microBatch, int L, int depth) {
    requirePartitions(data);
    final String version = version();
    final MambaConfig c = config;
    final ParameterSlices sl = slices;
    return DataParallelTraining.sumLosses(
        data.zipPartitions(
            gathered,
            (Iterator<int[]> it, Iterator<SliceRecord> weights) ->
                DataParallelTraining.partitionLoss(
                    it,
                    () -> TrainingRunners.acquire(version, c, () -> gather(sl, weights)),
                    microBatch,
                    L)),
        depth);
  }

  /**
   * Whether a lost shard would still be made again from the start (no reliable checkpoint of the
   * state yet): the checkpoint a run resumed from must stay until then.
   */
  public boolean needsStart() {
    return checkpointed == null;
  }

  /**
   * Writes the current weights and moments into {@code dir} (any Hadoop file system) as the files
   * of {@code layout}, from the executors: the slices' pieces of each file go through the shuffle
   * to one task, which streams them in order into the file (under a name of its own, then renamed,
   * so a retried or speculative task leaves no torn file). The driver receives K small results and
   * checks every file's size against its header.
   *
   * @param stateMetadata what the state files carry besides the moments (step, seed, ...)
   */
  public void writeCheckpoint(
      String dir, CheckpointLayout layout, Map<String, String> stateMetadata) throws IOException {
    final ParameterSlices sl = slices;
    final CheckpointLayout lay = layout;
    final Map<String, String> meta = new LinkedHashMap<>(stateMetadata);
    final SerializableConfiguration conf = new SerializableConfiguration(sc.hadoopConfiguration());
    sc.setJobDescription("mamba train: step " + step + ": checkpoint written by the executors");
    List<Tuple2<Integer, Long>> written =
        state
            .flatMapToPair(sh -> CheckpointPieces.cut(sl, lay, sh._2()).iterator())
            .partitionBy(new HashPartitioner(layout.files()))
            .mapPartitions(it -> CheckpointPieces.write(it, sl, lay, meta, dir, conf.value()))
            .collect();
    Path d = new Path(dir);
    FileSystem fs = d.getFileSystem(sc.hadoopConfiguration());
    for (int k = 0; k < layout.files(); k++) {
      long[] want = {layout.modelWriter(k).fileSize(), layout.stateWriter(k, meta).fileSize()};
      String[] names = {layout.modelFile(k), layout.stateFile(k)};
      for (int i = 0; i < 2; i++) {
        Path f = new Path(d, names[i]);
        long got = fs.exists(f) ? fs.getFileStatus(f).getLen() : -1;
        if (got != want[i]) {
          throw new IOException(
              f
                  + ": "
                  + (got < 0 ? "missing" : got + " bytes")
                  + " after the write, expected "
                  + want[i]);
        }
      }
    }
    LOG.info(
        "step {}: {} checkpoint files written by the executors into {}",
        step,
        2 * written.size(),
        dir);
  }

  /**
   * Drops the cached state and the broadcasts its lineage needed, and this JVM's spare arrays (an
   * executor's in local mode; other executors' stay bounded, and go with their JVM).
   */
  public void close() {
    state.unpersist(false);
    weights.unpersist(false);
    SpareArrays.jvm().clear();
    for (Tuple2<Long, Broadcast<?>> b : lineage) {
      b._2().destroy();
    }
    lineage.clear();
    deleteCheckpointFiles(checkpointed);
  }

  private void requirePartitions(JavaRDD<?> data) {
    if (data.getNumPartitions() != partitions) {
      throw new IllegalArgumentException(
          "data in " + data.getNumPartitions() + " partitions, the weights go to " + partitions);
    }
  }

  /** Makes next the state (persisted, checkpointed when due, gathered); returns the previous. */
  private JavaPairRDD<Integer, OptimizerShard> setState(JavaPairRDD<Integer, OptimizerShard> next) {
    JavaPairRDD<Integer, OptimizerShard> previous = state;
    state = next;
    state.persist(StorageLevel.MEMORY_AND_DISK());
    if (stateCheckpointEvery > 0 && previous != null && step % stateCheckpointEvery == 0) {
      state.checkpoint();
    }
    // the weights alone, cached: a data partition on another executor fetches 4 bytes a parameter
    // of its slices, not the moments too. The arrays are the shards' own: the cache holds them once
    // and counts them once (SliceRecord.view).
    weights = state.map(sh -> SliceRecord.view(sh._1(), sh._2().w));
    weights.persist(StorageLevel.MEMORY_AND_DISK());
    // coalesce without a shuffle: one partition whose parents are all S slices; P copies of it
    gathered = union(Collections.nCopies(partitions, weights.coalesce(1, false)));
    return previous;
  }

  /** The RDDs' partitions one after another, in list order. */
  private JavaRDD<SliceRecord> union(List<JavaRDD<SliceRecord>> rdds) {
    @SuppressWarnings("unchecked")
    JavaRDD<SliceRecord>[] a =
        (JavaRDD<SliceRecord>[]) java.lang.reflect.Array.newInstance(JavaRDD.class, rdds.size());
    return sc.union(rdds.toArray(a));
  }

  /**
   * After a reliable checkpoint of the state: the lineage before it (older batches' indices, the
   * previous checkpoint's files) is no longer needed.
   */
  private void afterMaterialized() {
    if (!state.rdd().isCheckpointed()) {
      return;
    }
    List<Tuple2<Long, Broadcast<?>>> keep = new ArrayList<>();
    for (Tuple2<Long, Broadcast<?>> b : lineage) {
      if (b._1() < step) {
        b._2().destroy();
      } else {
        keep.add(b);
      }
    }
    lineage.clear();
    lineage.addAll(keep);
    deleteCheckpointFiles(checkpointed);
    checkpointed = state;
    LOG.info("optimizer state checkpointed at step {}: {}", step, state.rdd().getCheckpointFile());
  }

  private void deleteCheckpointFiles(JavaPairRDD<Integer, OptimizerShard> rdd) {
    scala.Option<String> file = rdd == null ? scala.Option.empty() : rdd.rdd().getCheckpointFile();
    if (file.isEmpty()) {
      return;
    }
    try {
      Path p = new Path(file.get());
      p.getFileSystem(sc.hadoopConfiguration()).delete(p, true);
    } catch (IOException e) {
      LOG.warn("could not delete the optimizer-state checkpoint {}: {}", file.get(), e.toString());
    }
  }

  /**
   * Reads the gathered weight slices (all S, or it fails); returns what writes them into a cached
   * model's tensors.
   */
  private static Consumer<MambaWeights> gather(ParameterSlices sl, Iterator<SliceRecord> weights) {
    List<SliceRecord> got = new ArrayList<>(sl.count());
    weights.forEachRemaining(got::add);
    if (got.size() != sl.count()) {
      throw new IllegalStateException(
          "gathered " + got.size() + " weight slices, expected " + sl.count());
    }
    return w -> {
      float[][] tensors = ParameterSlices.arrays(w);
      for (SliceRecord r : got) {
        sl.copyIn(r.data, r.slice, tensors);
      }
    };
  }

  /**
   * The gradients' records of each slice: S RDDs, the s-th holding slice s of every data partition.
   * With several data partitions each is cached where its gradient is (one job of P·S small tasks,
   * placed by the cache), so a reducer on another executor fetches its slice, not the whole
   * gradient; with one partition the updates read its cached gradient (already reduced) directly.
   */
  private List<JavaRDD<SliceRecord>> scatter(JavaRDD<SliceRecord> grads) {
    List<JavaRDD<SliceRecord>> bySlice = new ArrayList<>();
    for (int s = 0; s < slices.count(); s++) {
      final int slice = s;
      JavaRDD<SliceRecord> one =
          grads.mapPartitionsWithIndex(
              (p, it) -> {
                List<SliceRecord> mine = new ArrayList<>(1);
                it.forEachRemaining(
                    r -> {
                      if (r.slice == slice) {
                        SliceRecord v = r.sharing(); // the gradient's memory, counted with it
                        v.partition = p;
                        mine.add(v);
                      }
                    });
                return mine.iterator();
              },
              true);
      bySlice.add(one);
    }
    if (partitions > 1) {
      for (JavaRDD<SliceRecord> one : bySlice) {
        one.persist(StorageLevel.MEMORY_AND_DISK());
      }
      sc.setJobDescription("mamba train: step " + (step + 1) + ": gradients cut into slices");
      union(bySlice).count();
    }
    return bySlice;
  }

  /**
   * Reducer s: the partitions' sums of slice s added in partition-index order (a fixed order, so
   * the result does not depend on which task finished first or where a part was read), with Σ g² of
   * the sum divided by the batch's tokens and the loss and token totals for the driver. One
   * partition's fp32 sum is not copied: the result is a view of it.
   */
  private static Iterator<SliceRecord> sumInOrder(Iterator<SliceRecord> it) {
    List<SliceRecord> parts = new ArrayList<>();
    it.forEachRemaining(parts::add);
    if (parts.isEmpty()) {
      return Collections.emptyIterator();
    }
    parts.sort((a, b) -> Integer.compare(a.partition, b.partition));
    return Collections.singletonList(sumInOrder(parts, true)).iterator();
  }

  /**
   * The sum of one slice's parts in list order, as {@link #sumInOrder(Iterator)} describes.
   *
   * @param view whether one unrounded part's sum is a view of it (the part is cached on its own),
   *     or the part itself, given its Σ g² (a record not cached yet, whose memory it then counts)
   */
  private static SliceRecord sumInOrder(List<SliceRecord> parts, boolean view) {
    SliceRecord first = parts.get(0);
    boolean bf16 = first.bf16;
    int n = first.length();
    float[] sum = parts.size() == 1 && !bf16 ? null : new float[n];
    SliceRecord out =
        sum != null ? SliceRecord.of(first.slice, sum) : view ? first.sharing() : first;
    double lossSum = 0;
    long tokens = 0, sequences = 0, computeNanos = 0;
    Set<String> executors = new TreeSet<>();
    List<Gradients.Pieces> values = new ArrayList<>(parts.size());
    for (SliceRecord r : parts) { // out may be one of them: its totals are set after
      executors.add(r.executors);
      values.add(r.pieces());
      lossSum += r.lossSum;
      tokens += r.tokens;
      sequences += r.sequences;
      computeNanos = Math.max(computeNanos, r.computeNanos);
    }
    out.lossSum = lossSum;
    out.tokens = tokens;
    out.sequences = sequences;
    out.computeNanos = computeNanos;
    out.executors = String.join(",", executors);
    // the task holds all of its executor's cores (spark.task.cpus): the sum runs on the engine's
    // threads
    out.sumSquares = Gradients.sumInOrder(values, n, sum, (float) (1.0 / out.tokens), bf16);
    return out;
  }

  /**
   * What the driver needs of a reduced slice: Σ g², Σ loss, tokens, the longest compute; and the
   * executors that computed its gradients.
   */
  private static Tuple2<double[], String> stats(SliceRecord r) {
    return new Tuple2<>(
        new double[] {r.sumSquares, r.lossSum, r.tokens, r.computeNanos}, r.executors);
  }
}
