package org.mambaspark.jobs;

import java.nio.file.Paths;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Pattern;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;
import org.mambaspark.ops.LoudWarning;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Starting Spark for a job from its master URL, with every start-up mistake as one line: a master
 * Spark does not know, too little heap for Spark, a failure to connect. {@code local[N]} and {@code
 * local-cluster[N,C,MB]} run in this JVM; the second launches N executor JVMs of C cores and MB
 * megabytes on this machine (Spark's own multi-JVM test cluster: it needs Spark's test mode to give
 * the executors this JVM's classpath), which is how a job meets real executors without a cluster.
 */
final class SparkMasters {
  private static final Logger LOG = LoggerFactory.getLogger(SparkMasters.class);

  /** Spark's floor for a JVM's heap (its UnifiedMemoryManager refuses less): 1.5 × 300 MB. */
  static final long MIN_HEAP = 450L << 20;

  /** What the jobs' vectorized engine needs on every JVM it runs in. */
  static final String VECTOR_MODULE = "--add-modules=jdk.incubator.vector";

  /**
   * Transparent huge pages for the heap of the executors this JVM launches, on Linux only
   * (elsewhere the JVM refuses the flag): a decode step streams every weight once a token, and on 4
   * KB pages the hardware prefetcher starts over at each page (bin/jvm-options.sh gives the same to
   * the CLI).
   */
  static final String HUGE_PAGES =
      System.getProperty("os.name", "").startsWith("Linux") ? "-XX:+UseTransparentHugePages" : "";

  /**
   * The options that touch a training executor's whole heap when it starts: a training step
   * allocates its new optimizer state and gradient (16 bytes a parameter), and on a fresh heap the
   * operating system's first touch of each page would land on the steps (docs/training.md has what
   * was measured). AlwaysPreTouch touches the initial heap only, so the initial heap is the whole
   * heap ({@code memory}, spark.executor.memory's value; Spark sets -Xmx from it and refuses -Xmx
   * among the java options): a heap grown step by step also pauses the steps for its collections.
   */
  static String preTouch(String memory) {
    return "-XX:+AlwaysPreTouch -Xms" + memory;
  }

  private static final Pattern KNOWN =
      Pattern.compile(
          "local(\\[(\\*|\\d+)(,\\d+)?])?|local-cluster\\[\\d+,\\d+,\\d+]|spark://.+|yarn"
              + "|k8s://.+|mesos://.+");
  private static final Pattern LOCAL_CLUSTER =
      Pattern.compile("local-cluster\\[(\\d+),(\\d+),(\\d+)]");

  private SparkMasters() {}

  /**
   * Checks the master and completes the configuration for the in-process masters.
   *
   * @throws IllegalArgumentException for a master URL Spark does not know
   */
  static void prepare(SparkConf conf) {
    if (!conf.contains("spark.master")) {
      return; // Spark says what is missing
    }
    String master = conf.get("spark.master").trim();
    check(master);
    if (master.startsWith("local")) { // an in-process Spark talks to itself only
      conf.setIfMissing("spark.driver.host", "127.0.0.1");
      conf.setIfMissing("spark.driver.bindAddress", "127.0.0.1");
      conf.setIfMissing("spark.ui.showConsoleProgress", "false");
    }
    java.util.regex.Matcher m = LOCAL_CLUSTER.matcher(master);
    if (m.matches()) {
      // Spark's test mode: without it the workers look for a Spark installation's jars
      System.setProperty("spark.testing", "1");
      if (System.getProperty("spark.test.home") == null) {
        System.setProperty(
            "spark.test.home", System.getProperty("java.io.tmpdir", Paths.get("").toString()));
      }
      conf.setIfMissing("spark.executorEnv.SPARK_SCALA_VERSION", "2.12");
      conf.setIfMissing("spark.executor.memory", m.group(3) + "m"); // fits the worker
      conf.set(
          "spark.executor.extraJavaOptions",
          withOption(
              withOption(conf.get("spark.executor.extraJavaOptions", ""), VECTOR_MODULE),
              HUGE_PAGES));
    }
  }

  /**
   * @throws IllegalArgumentException for a master URL Spark does not know
   */
  static void check(String master) {
    if (!KNOWN.matcher(master.trim()).matches()) {
      throw new IllegalArgumentException(
          "--master '"
              + master
              + "' is not a Spark master URL (local[*], local[N], local-cluster[N,CORES,MB],"
              + " spark://HOST:PORT, yarn, k8s://https://HOST:PORT)");
    }
  }

  /** {@code options} with {@code option} appended unless it is already there. */
  static String withOption(String options, String option) {
    String o = options == null ? "" : options.trim();
    return o.contains(option) ? o : (o.isEmpty() ? option : o + " " + option).trim();
  }

  /**
   * Starts (or joins) the SparkSession for {@code conf}, named {@code appName} unless the user
   * named it.
   *
   * @throws IllegalArgumentException with one line on any failure to start
   */
  static SparkSession start(SparkConf conf, String appName) {
    long heap = Runtime.getRuntime().maxMemory();
    if (!conf.contains("spark.testing.memory") && heap < MIN_HEAP) {
      throw new IllegalArgumentException(
          String.format(
              Locale.ROOT,
              "this JVM has %d MB of heap; Spark needs at least %d MB. %s",
              heap >> 20,
              MIN_HEAP >> 20,
              heapAdvice()));
    }
    try {
      SparkSession.Builder b = SparkSession.builder().config(conf);
      // a user's name wins: spark-submit's --name and --conf spark.app.name arrive in conf;
      // spark-submit without --name sets the main class's name, which is replaced
      String given = conf.get("spark.app.name", "");
      if (given.isEmpty() || given.startsWith(SparkMasters.class.getPackageName() + ".")) {
        b.appName(appName);
      }
      return b.getOrCreate();
    } catch (RuntimeException e) {
      Throwable root = e;
      while (root.getCause() != null) {
        root = root.getCause();
      }
      throw new IllegalArgumentException(
          "cannot start Spark (master "
              + conf.get("spark.master", "unset")
              + "): "
              + Output.firstLine(root.getMessage() == null ? root.toString() : root.getMessage()),
          e);
    }
  }

  private static final AtomicBoolean VECTOR_WARNED = new AtomicBoolean();

  /**
   * Says once, loudly, in the driver's log when the JVMs that run the engine lack the Vector API
   * module: the executors (their {@code extraJavaOptions}), or this JVM for a local master. Plain
   * spark-submit without the project's settings starts them so, and the job then runs several times
   * slower with nothing else to show for it in the driver's log.
   */
  static void warnWithoutVectorApi(SparkConf conf) {
    String master = conf.get("spark.master", "");
    boolean local = master.startsWith("local") && !master.startsWith("local-cluster");
    boolean ok =
        local
            ? ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()
            : (conf.get("spark.executor.extraJavaOptions", "")
                    + " "
                    + conf.get("spark.executor.defaultJavaOptions", ""))
                .contains("jdk.incubator.vector");
    if (!ok && VECTOR_WARNED.compareAndSet(false, true)) {
      LoudWarning.warn(
          LOG,
          "\n"
              + "*".repeat(100)
              + "\n*** "
              + (local ? "this JVM runs" : "the executors run")
              + " without "
              + VECTOR_MODULE
              + ": the engine falls back to scalar loops, several times slower.\n*** Add it to "
              + (local ? "the JVM's options" : "spark.executor.extraJavaOptions")
              + " (deploy/mamba-submit and conf/spark-defaults.conf do).\n"
              + "*".repeat(100));
    }
  }

  /** One line for a job that ran out of heap, with the setting that gives more. */
  static String outOfMemory() {
    return "out of memory (Java heap space) with "
        + (Runtime.getRuntime().maxMemory() >> 20)
        + " MB of heap in this JVM. "
        + heapAdvice()
        + "; executors: --executor-memory, or fewer --batch-tokens";
  }

  private static String heapAdvice() {
    return "Give it more: bin/mamba with MAMBA_JAVA_OPTS=-Xmx4g, spark-submit with --driver-memory 4g";
  }
}
