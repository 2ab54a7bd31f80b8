package org.mambaspark.spark;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.NamedTensor;
import org.mambaspark.train.GradientSum;
import org.mambaspark.train.TrainStep;
import scala.Tuple2;

/**
 * One synchronous data-parallel step on Spark, MLlib's GradientDescent pattern: broadcast the
 * weights, let every partition sum the gradient of its share of the step's global batch ({@link
 * TrainStep#gradient}), combine the sums with treeAggregate, and leave the update to the driver
 * ({@link TrainStep#apply}). The partition function is deterministic and side-effect free, so a
 * retried task contributes exactly once (Spark keeps one successful attempt's result).
 *
 * <p>Bytes moved per step: the broadcast (parameters × 4, once per executor) plus one gradient
 * (parameters × 4) per partition up the aggregation tree.
 */
public final class DataParallelTraining {
  private DataParallelTraining() {}

  /**
   * Test hook, a Spark local property (set with {@code sc.setLocalProperty} on the driver thread):
   * the first attempt of the task for this partition throws, so that Spark retries it (fault
   * injection).
   */
  public static final String FAIL_FIRST_ATTEMPT_OF_PARTITION =
      "mamba.test.failFirstAttemptOfPartition";

  /**
   * The weights as shipped: the config and every tensor in {@link MambaWeights#parameters()} order.
   */
  static final class Snapshot implements java.io.Serializable {
    private static final long serialVersionUID = 1L;
    final MambaConfig config;
    final float[][] tensors;

    Snapshot(MambaWeights w) {
      config = w.config;
      List<NamedTensor> ps = w.parameters();
      tensors = new float[ps.size()][];
      for (int i = 0; i < ps.size(); i++) {
        tensors[i] = ps.get(i).data;
      }
    }

    MambaWeights weights() {
      MambaWeights w = new MambaWeights(config);
      List<NamedTensor> ps = w.parameters();
      for (int i = 0; i < ps.size(); i++) {
        System.arraycopy(tensors[i], 0, ps.get(i).data, 0, tensors[i].length);
      }
      return w;
    }
  }

  /**
   * The summed gradient of the sequences whose index is in {@code batch}.
   *
   * @param data (index, sequence of L ids), cached by the caller
   */
  public static GradientSum stepGradient(
      JavaSparkContext sc,
      JavaRDD<Tuple2<Long, int[]>> data,
      MambaWeights w,
      Set<Long> batch,
      int microBatch,
      int L,
      int scanChunk,
      int depth) {
    Broadcast<Snapshot> weights = sc.broadcast(new Snapshot(w));
    Broadcast<Set<Long>> indices = sc.broadcast(batch);
    try {
      JavaRDD<GradientSum> sums =
          data.mapPartitions(
              (Iterator<Tuple2<Long, int[]>> it) -> {
                TaskContext tc = TaskContext.get();
                String failPartition =
                    tc == null ? null : tc.getLocalProperty(FAIL_FIRST_ATTEMPT_OF_PARTITION);
                if (failPartition != null
                    && Integer.toString(tc.partitionId()).equals(failPartition)
                    && tc.attemptNumber() == 0) {
                  throw new IllegalStateException(
                      "injected failure of partition " + failPartition + ", attempt 0");
                }
                List<Tuple2<Long, int[]>> mine = new ArrayList<>();
                while (it.hasNext()) {
                  Tuple2<Long, int[]> t = it.next();
                  if (indices.value().contains(t._1())) {
                    mine.add(t);
                  }
                }
                mine.sort(
                    (a, b) ->
                        Long.compare(a._1(), b._1())); // a fixed order, whatever the input order
                List<int[]> seqs = new ArrayList<>(mine.size());
                for (Tuple2<Long, int[]> t : mine) {
                  seqs.add(t._2());
                }
                MambaWeights local = weights.value().weights();
                GradientSum s =
                    seqs.isEmpty()
                        ? new GradientSum(local)
                        : TrainStep.gradient(new MambaModel(local), seqs, microBatch, L, scanChunk);
                return java.util.Collections.singletonList(s).iterator();
              });
      return sums.treeAggregate(
          null, DataParallelTraining::combine, DataParallelTraining::combine, depth);
    } finally {
      weights.destroy();
      indices.destroy();
    }
  }

  // c: (gradient, loss, token count) sums; null is the empty sum
  private static GradientSum combine(GradientSum a, GradientSum b) {
    if (a == null) {
      return b;
    }
    if (b == null) {
      return a;
    }
    return a.add(b);
  }
}
