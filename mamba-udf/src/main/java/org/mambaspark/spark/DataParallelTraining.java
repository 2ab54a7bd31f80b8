package org.mambaspark.spark;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.mambaspark.model.Backend;
import org.mambaspark.model.Backends;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.ModelRunner;
import org.mambaspark.model.NamedTensor;
import org.mambaspark.train.AdamW;
import org.mambaspark.train.LrSchedule;
import org.mambaspark.train.ModelAverage;
import org.mambaspark.train.TrainStep;
import scala.Tuple2;

/**
 * Data-parallel training on Spark besides the sharded synchronous step ({@link ShardedTraining}):
 * periodic model averaging ({@link #averageRound}: the driver broadcasts weights and moments, every
 * partition takes H local AdamW steps, a treeAggregate averages them), the held-out loss under
 * driver-held weights ({@link #evalLoss}), and what both paths share: each partition's share of a
 * batch and its held-out loss.
 *
 * <p>The gradient runs through each executor's cached {@link ModelRunner} ({@link TrainingRunners}:
 * on the GPU Spark assigned the task, else the CPU). Bytes moved per round of averaging: weights
 * and both moments (parameters × 12) once per executor and once per partition up the tree
 * (docs/training.md).
 */
public final class DataParallelTraining {
  private DataParallelTraining() {}

  /**
   * The weights as shipped: the config and every tensor in {@link MambaWeights#parameters()} order.
   */
  static final class Snapshot implements java.io.Serializable {
    private static final long serialVersionUID = 1L;
    final MambaConfig config;
    final float[][] tensors;

    /** Fresh per snapshot: executors reload their cached training model when it changes. */
    final String key = java.util.UUID.randomUUID().toString();

    Snapshot(MambaWeights w) {
      config = w.config;
      List<NamedTensor> ps = w.parameters();
      tensors = new float[ps.size()][];
      for (int i = 0; i < ps.size(); i++) {
        tensors[i] = ps.get(i).data;
      }
    }
  }

  /**
   * How many times this JVM copied a step's broadcast weights into its cached training model: 0 on
   * a driver whose executors are other processes (tests).
   */
  public static int trainingModelReloads() {
    return TrainingRunners.reloads();
  }

  /** Driver-side timers of one step (for the logs and the benchmark), in nanoseconds. */
  public static final class Timing {
    /** Building the broadcast (serializing and blockifying the weights on the driver). */
    public long broadcastNanos;

    /** The Spark job: shipping, the tasks, the tree aggregation, up to the result on the driver. */
    public long jobNanos;

    /** Bytes of the broadcast value (weights, + moments in average mode). */
    public long broadcastBytes;
  }

  /**
   * A partition's {loss sum, tokens} on the executor's training runner (taken from {@code runner}
   * and released), or {0, 0} when it holds no sequence.
   */
  static Iterator<double[]> partitionLoss(
      Iterator<int[]> it, java.util.function.Supplier<ModelRunner> runner, int microBatch, int L) {
    List<int[]> seqs = new ArrayList<>();
    it.forEachRemaining(seqs::add);
    if (seqs.isEmpty()) {
      return Collections.singletonList(new double[2]).iterator();
    }
    ModelRunner r = runner.get();
    try {
      return Collections.singletonList(TrainStep.lossSum(r, seqs, microBatch, L)).iterator();
    } finally {
      TrainingRunners.release();
    }
  }

  /** The partitions' {loss sum, tokens} added up. */
  static double[] sumLosses(JavaRDD<double[]> sums, int depth) {
    return sums.treeAggregate(
        new double[2],
        (a, b) -> new double[] {a[0] + b[0], a[1] + b[1]},
        (a, b) -> new double[] {a[0] + b[0], a[1] + b[1]},
        depth);
  }

  /**
   * Mean next-token loss of every sequence of {@code data} under the weights w, computed where the
   * data lives (no gradient) through each executor's cached training runner: {loss sum, tokens}.
   */
  public static double[] evalLoss(
      JavaSparkContext sc, JavaRDD<int[]> data, MambaWeights w, int microBatch, int L, int depth) {
    Broadcast<Snapshot> weights = sc.broadcast(new Snapshot(w));
    try {
      return sumLosses(
          data.mapPartitions(
              (Iterator<int[]> it) ->
                  partitionLoss(it, () -> TrainingRunners.acquire(weights.value()), microBatch, L)),
          depth);
    } finally {
      weights.destroy();
    }
  }

  /**
   * One round of periodic model averaging: broadcast the weights and AdamW moments, let every
   * partition take {@code batches.size()} local AdamW steps (step h on its part of {@code
   * batches.get(h)}, learning rate {@code schedule.lr(opt.step() + h)}), and combine the resulting
   * weights and moments, weighted by the tokens each partition trained on ({@link ModelAverage}).
   * The caller applies the result ({@link ModelAverage#applyTo}).
   */
  public static ModelAverage averageRound(
      JavaSparkContext sc,
      JavaRDD<Tuple2<Long, int[]>> data,
      MambaWeights w,
      AdamW opt,
      List<Set<Long>> batches,
      LrSchedule schedule,
      float clip,
      int microBatch,
      int L,
      int scanChunk,
      int depth,
      Timing timing) {
    long t0 = System.nanoTime();
    ModelAverage.Start start = new ModelAverage.Start(w, opt);
    Broadcast<ModelAverage.Start> state = sc.broadcast(start);
    Broadcast<List<Set<Long>>> indices = sc.broadcast(batches);
    long t1 = System.nanoTime();
    try {
      JavaRDD<ModelAverage> parts =
          data.mapPartitions(
              (Iterator<Tuple2<Long, int[]>> it) -> {
                List<Tuple2<Long, int[]>> all = new ArrayList<>();
                it.forEachRemaining(all::add);
                List<List<int[]>> shares = new ArrayList<>();
                for (Set<Long> b : indices.value()) {
                  shares.add(mine(all.iterator(), b));
                }
                TrainingRunners.sizeThreads();
                Backend backend =
                    Backends.forGpuAddress(GpuAssignment.address(TaskContext.get()).orElse(null));
                return Collections.singletonList(
                        ModelAverage.localSteps(
                            state.value(),
                            backend,
                            shares,
                            schedule,
                            clip,
                            microBatch,
                            L,
                            scanChunk))
                    .iterator();
              });
      ModelAverage total =
          parts.treeAggregate(
              null, DataParallelTraining::combine, DataParallelTraining::combine, depth);
      if (timing != null) {
        timing.broadcastNanos = t1 - t0;
        timing.jobNanos = System.nanoTime() - t1;
        timing.broadcastBytes = start.bytes();
      }
      return total;
    } finally {
      state.destroy();
      indices.destroy();
    }
  }

  /**
   * The sequences of this partition whose index is in batch, in index order (whatever the input
   * order).
   */
  static List<int[]> mine(Iterator<Tuple2<Long, int[]>> it, Set<Long> batch) {
    List<Tuple2<Long, int[]>> mine = new ArrayList<>();
    while (it.hasNext()) {
      Tuple2<Long, int[]> t = it.next();
      if (batch.contains(t._1())) {
        mine.add(t);
      }
    }
    mine.sort((a, b) -> Long.compare(a._1(), b._1()));
    List<int[]> seqs = new ArrayList<>(mine.size());
    for (Tuple2<Long, int[]> t : mine) {
      seqs.add(t._2());
    }
    return seqs;
  }

  // weighted model sums; null is the empty sum
  private static ModelAverage combine(ModelAverage a, ModelAverage b) {
    if (a == null) {
      return b;
    }
    if (b == null) {
      return a;
    }
    return a.add(b);
  }
}
