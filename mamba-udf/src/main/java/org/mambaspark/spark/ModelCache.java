package org.mambaspark.spark;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.mambaspark.batch.DocumentRunner;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.Backend;
import org.mambaspark.model.Backends;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.ModelRunner;
import org.mambaspark.ops.Parallel;
import org.mambaspark.ops.WeightMatrix;
import org.mambaspark.tokenizer.Tokenizer;
import org.mambaspark.tokenizer.Tokenizers;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The models of this JVM (an executor, or the driver in local mode), loaded once per path and
 * shared by every task thread: {@link MambaModel} is immutable and thread-safe, and each task keeps
 * its own workspaces. Models stay for the JVM's lifetime (an executor serves one application).
 */
public final class ModelCache {
  private static final Logger LOG = LoggerFactory.getLogger(ModelCache.class);

  private static final ConcurrentHashMap<String, Loaded> MODELS = new ConcurrentHashMap<>();
  private static final AtomicInteger LOADS = new AtomicInteger();

  /** A model ready for use, and where it came from. */
  public static final class Loaded {
    public final String path;
    public final MambaModel model;

    /** The model's tokenizer, or null when it has none (then only token ids are accepted). */
    public final Tokenizer tokenizer;

    /** 1 for the first model this JVM loaded, 2 for the second, ... */
    public final int loadNumber;

    public final long loadMillis;

    private final AtomicBoolean loadReported = new AtomicBoolean();
    private final ConcurrentHashMap<Backend, ModelRunner> runners = new ConcurrentHashMap<>();

    Loaded(String path, MambaModel model, Tokenizer tokenizer, int loadNumber, long loadMillis) {
      this.path = path;
      this.model = model;
      this.tokenizer = tokenizer;
      this.loadNumber = loadNumber;
      this.loadMillis = loadMillis;
    }

    /**
     * The model bound to a backend, opened once per backend (a GPU runner holds the weights on its
     * device) and shared by the tasks that use it.
     */
    public ModelRunner runner(Backend backend) {
      return runners.computeIfAbsent(backend, b -> b.open(model));
    }

    /**
     * The runner for the running Spark task: on the GPU Spark assigned it, if any, else on the
     * JVM's backend ({@link Backends#get}: a usable GPU, else the CPU, said loudly).
     */
    public ModelRunner runnerForTask() {
      return runner(Backends.forGpuAddress(GpuAssignment.address(TaskContext.get()).orElse(null)));
    }

    /** True for the first caller only: the task that reports this load to the job's metrics. */
    public boolean claimLoadReport() {
      return loadReported.compareAndSet(false, true);
    }
  }

  private ModelCache() {}

  /**
   * The model at {@code path}, loading it on first use in this JVM (concurrent callers wait for the
   * one load). {@code threads} > 0 sizes the engine's thread pool on that first load.
   */
  public static Loaded get(String path, Configuration conf, int threads) {
    return get(path, conf, threads, WeightMatrix.Dtype.FP32);
  }

  /** {@link #get(String, Configuration, int)} with the matrices held in {@code dtype}. */
  public static Loaded get(String path, Configuration conf, int threads, WeightMatrix.Dtype dtype) {
    String key = dtype == WeightMatrix.Dtype.FP32 ? path : path + " (" + dtype.label() + ")";
    Loaded l = MODELS.get(key);
    if (l != null) {
      return l;
    }
    return MODELS.computeIfAbsent(key, k -> load(path, conf, threads, dtype));
  }

  /** How many models this JVM has loaded (tests: one per executor JVM). */
  public static int loads() {
    return LOADS.get();
  }

  /** An id for this JVM in logs and tests: {@code executor <id> (pid <pid>)}. */
  public static String jvmId() {
    SparkEnv env = SparkEnv.get();
    String exec = env == null ? "?" : env.executorId();
    return "executor " + exec + " (pid " + ProcessHandle.current().pid() + ")";
  }

  private static Loaded load(
      String path, Configuration conf, int threads, WeightMatrix.Dtype dtype) {
    long t0 = System.nanoTime();
    int t = threads > 0 ? threads : executorCores();
    if (t != Parallel.threads()) {
      Parallel.setThreads(t);
    }
    java.nio.file.Path dir = ModelFiles.localize(path, conf);
    MambaModel model;
    Tokenizer tok;
    try {
      model = Checkpoint.loadModel(dir, dtype);
      tok = Tokenizers.forModel(dir).orElse(null);
    } catch (RuntimeException e) { // name the user's path, not the executor's local copy
      throw new IllegalStateException(
          "model " + path + ": " + ModelFiles.userPaths(DocumentRunner.message(e), dir, path), e);
    }
    int n = LOADS.incrementAndGet();
    long ms = (System.nanoTime() - t0) / 1_000_000;
    LOG.info(
        "{}: loaded model {} ({}; matrices {} MB in {}{}; tokenizer: {}) in {} ms; engine threads"
            + " {}; JVM {} MB max heap; model #{} in this JVM",
        jvmId(),
        path,
        model.config,
        model.matrixBytes() >> 20,
        dtype.label(),
        model.holdsFp32Matrices() && dtype != WeightMatrix.Dtype.FP32
            ? ", fp32 copies kept for the GPU"
            : "",
        tok == null ? "none" : tok.describe(),
        ms,
        Parallel.threads(),
        Runtime.getRuntime().maxMemory() >> 20,
        n);
    return new Loaded(path, model, tok, n, ms);
  }

  /**
   * The cores Spark gives this executor, which size the engine's thread pool unless {@code
   * spark.mamba.threads} says otherwise: {@code spark.executor.cores} where set; else what the
   * cluster manager gives an executor by default (one core on YARN and Kubernetes, every core of
   * the worker on a standalone cluster); in local mode, the N of {@code local[N]} (the JVM's cores
   * for {@code local[*]}). Never more than the cores this JVM sees (a container's limit included).
   */
  static int executorCores() {
    int all = Runtime.getRuntime().availableProcessors();
    SparkEnv env = SparkEnv.get();
    if (env == null) {
      return all;
    }
    return Math.max(1, Math.min(all, executorCores(env.conf(), all)));
  }

  static int executorCores(SparkConf conf, int all) {
    String master = conf.get("spark.master", "");
    if (master.startsWith("local[")) { // the driver is the executor
      String inside = master.substring("local[".length(), master.length() - 1);
      int comma = inside.indexOf(',');
      String n = (comma < 0 ? inside : inside.substring(0, comma)).trim(); // local[N,maxFailures]
      return n.equals("*") ? all : Integer.parseInt(n);
    }
    if (master.equals("local")) {
      return 1;
    }
    if (conf.contains("spark.executor.cores")) {
      return conf.getInt("spark.executor.cores", all);
    }
    return master.startsWith("yarn") || master.startsWith("k8s") ? 1 : all;
  }
}
