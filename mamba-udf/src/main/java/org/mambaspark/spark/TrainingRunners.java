package org.mambaspark.spark;

import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.apache.spark.TaskContext;
import org.mambaspark.model.Backend;
import org.mambaspark.model.Backends;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.ModelRunner;
import org.mambaspark.model.NamedTensor;
import org.mambaspark.ops.Parallel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The training model of this executor JVM: one copy of the weights, one {@link ModelRunner} per
 * backend (on a GPU the weights stay resident), shared by the executor's task threads. Each version
 * of the weights has a key; the first task that sees a new key writes that version (gathered
 * slices, or a broadcast) into the cached weights in place and calls {@link
 * ModelRunner#reloadWeights}, under a write lock that waits for the tasks still computing on the
 * previous weights. Tasks compute under the read lock, so the tasks of one step run concurrently.
 */
final class TrainingRunners {
  private static final Logger LOG = LoggerFactory.getLogger(TrainingRunners.class);
  private static final ReentrantReadWriteLock LOCK = new ReentrantReadWriteLock();
  private static final ConcurrentHashMap<Backend, ModelRunner> RUNNERS = new ConcurrentHashMap<>();
  private static String key; //           guarded by LOCK
  private static MambaWeights weights; // guarded by LOCK
  private static MambaModel model; //     guarded by LOCK
  private static int reloads; //          guarded by LOCK

  private TrainingRunners() {}

  /**
   * The runner for the running task (on the GPU Spark assigned it, else the JVM's backend) with the
   * snapshot's weights, holding the read lock: call {@link #release} in a finally block on the same
   * thread.
   */
  static ModelRunner acquire(DataParallelTraining.Snapshot snap) {
    return acquire(
        snap.key,
        snap.config,
        () ->
            w -> {
              List<NamedTensor> ps = w.parameters();
              for (int i = 0; i < ps.size(); i++) {
                System.arraycopy(snap.tensors[i], 0, ps.get(i).data, 0, snap.tensors[i].length);
              }
            });
  }

  /**
   * The runner with the weights version {@code key}: when this JVM holds another version, {@code
   * fetch} reads this one, holding no lock, and the filler it returns writes it into the cached
   * weights in place (under the write lock) and the runners reload them. Holds the read lock: call
   * {@link #release} in a finally block on the same thread.
   *
   * <p>Reading comes first, outside the lock, because reading a cached Spark block may compute it:
   * a block lost with its executor is recomputed from its lineage inside this task, and that
   * lineage can hold an earlier step's gradients, whose task acquires the runner for an earlier
   * version on this same thread. Filling while such a computation could interleave would mix two
   * versions' weights.
   */
  static ModelRunner acquire(
      String version, MambaConfig config, Supplier<Consumer<MambaWeights>> fetch) {
    LOCK.readLock().lock();
    if (!version.equals(key)) {
      LOCK.readLock().unlock();
      Consumer<MambaWeights> fill = fetch.get();
      LOCK.writeLock().lock();
      try {
        if (!version.equals(key)) {
          load(version, config, fill);
        }
        LOCK.readLock().lock(); // downgrade: hold the read lock before giving up the write lock
      } finally {
        LOCK.writeLock().unlock();
      }
    }
    Backend b = Backends.forGpuAddress(GpuAssignment.address(TaskContext.get()).orElse(null));
    return RUNNERS.computeIfAbsent(b, x -> x.open(model));
  }

  static void release() {
    LOCK.readLock().unlock();
  }

  /** How many times this JVM copied broadcast weights into its training model (tests, logs). */
  static int reloads() {
    LOCK.readLock().lock();
    try {
      return reloads;
    } finally {
      LOCK.readLock().unlock();
    }
  }

  /** The engine's threads in this JVM: the executor's cores (every core in local mode). */
  static void sizeThreads() {
    int t = ModelCache.executorCores();
    if (t != Parallel.threads()) {
      Parallel.setThreads(t);
    }
  }

  private static void load(String version, MambaConfig config, Consumer<MambaWeights> fill) {
    if (weights == null || !weights.config.equals(config)) {
      sizeThreads();
      for (ModelRunner r : RUNNERS.values()) {
        r.close();
      }
      RUNNERS.clear();
      weights = new MambaWeights(config);
      model = new MambaModel(weights);
      LOG.info(
          "{}: training model {}; engine threads {}",
          ModelCache.jvmId(),
          config,
          Parallel.threads());
    }
    key = null; // a failing fill leaves no version claimed
    fill.accept(weights);
    for (ModelRunner r : RUNNERS.values()) {
      r.reloadWeights();
    }
    key = version;
    reloads++;
  }
}
