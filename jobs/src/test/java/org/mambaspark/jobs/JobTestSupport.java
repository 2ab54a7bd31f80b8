package org.mambaspark.jobs;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.Scoring;
import org.mambaspark.model.Workspace;
import org.mambaspark.tokenizer.ByteTokenizer;
import org.mambaspark.tokenizer.Tokenizers;

/** Models, corpora and the engine's reference numbers for the job tests. */
final class JobTestSupport {
  static final ObjectMapper JSON = new ObjectMapper();

  private JobTestSupport() {}

  /** A small byte-level model (V=256, D=32, 2 layers) with fixed random weights. */
  static Path writeModel(Path dir) throws IOException {
    Files.createDirectories(dir);
    MambaConfig c =
        MambaConfig.builder().vocabSize(256).hiddenSize(32).stateSize(8).numLayers(2).build();
    Checkpoint.save(Initialization.initialize(c, 11), dir);
    Tokenizers.writeByteTokenizerMarker(dir);
    return dir;
  }

  /** A tiny training model (V=64, D=24, N=6, 2 layers) initialised with this seed. */
  static Path writeTrainingModel(Path dir, long seed) throws IOException {
    return writeTrainingModel(dir, seed, org.mambaspark.model.Architecture.MAMBA);
  }

  /**
   * The same small model in another architecture: Mamba-2 with two groups of three heads of 4
   * channels and chunks of 8 (the training rows' 17 positions end inside a chunk), or Falcon-Mamba.
   */
  static Path writeTrainingModel(Path dir, long seed, org.mambaspark.model.Architecture arch)
      throws IOException {
    Files.createDirectories(dir);
    MambaConfig.Builder b =
        MambaConfig.builder().architecture(arch).vocabSize(64).hiddenSize(24).numLayers(2);
    if (arch == org.mambaspark.model.Architecture.MAMBA2) {
      b.expand(1).headDim(4).nGroups(2).stateSize(5).chunkSize(8);
    } else {
      b.stateSize(6);
    }
    Checkpoint.save(Initialization.initialize(b.build(), seed), dir);
    return dir;
  }

  /**
   * A finished run's weights: the driver's with {@code --sync average}, else the model the
   * executors wrote to the top of --output (any file system), loaded here.
   */
  static org.mambaspark.model.MambaWeights trained(TrainJob j) throws IOException {
    if (j.weights != null) {
      return j.weights;
    }
    org.apache.hadoop.fs.Path out = new org.apache.hadoop.fs.Path(j.output);
    org.apache.hadoop.fs.FileSystem fs =
        out.getFileSystem(new org.apache.hadoop.conf.Configuration());
    if ("file".equals(fs.getScheme())) {
      return Checkpoint.load(Path.of(fs.makeQualified(out).toUri()));
    }
    Path local = Files.createTempDirectory("trained-");
    try {
      for (org.apache.hadoop.fs.FileStatus st : fs.listStatus(out)) {
        if (st.isFile()) {
          fs.copyToLocalFile(
              st.getPath(),
              new org.apache.hadoop.fs.Path(local.resolve(st.getPath().getName()).toUri()));
        }
      }
      return Checkpoint.load(local);
    } finally {
      org.apache.hadoop.fs.FileUtil.fullyDelete(local.toFile());
    }
  }

  /** G JSON lines {@code {"input_ids": [...]}} of L random ids below V. */
  static Path writeIdRows(Path file, int G, int L, int V, long seed) throws IOException {
    java.util.SplittableRandom r = new java.util.SplittableRandom(seed);
    List<String> lines = new ArrayList<>();
    for (int i = 0; i < G; i++) {
      lines.add("{\"input_ids\": " + java.util.Arrays.toString(r.ints(L, 0, V).toArray()) + "}");
    }
    Files.write(file, lines, StandardCharsets.UTF_8);
    return file;
  }

  /**
   * The training tests' job: global batch G of L-token sequences, micro-batches of 2, constant lr
   * 1e-3, weight decay 0.1, clipping at 1, seed 0, the optimizer in 3 slices (they cut across
   * tensors) with its state checkpointed every 2 steps, then {@code extra}.
   */
  static TrainJob trainJob(
      String init,
      String in,
      String out,
      long steps,
      int G,
      int L,
      int partitions,
      String... extra) {
    List<String> args =
        new ArrayList<>(
            List.of(
                "--init",
                init,
                "--input",
                in,
                "--output",
                out,
                "--steps",
                Long.toString(steps),
                "--global-batch",
                Integer.toString(G),
                "--seq-len",
                Integer.toString(L),
                "--micro-batch",
                "2",
                "--lr",
                "1e-3",
                "--warmup-steps",
                "0",
                "--schedule",
                "constant",
                "--weight-decay",
                "0.1",
                "--clip-grad",
                "1.0",
                "--seed",
                "0",
                "--partitions",
                Integer.toString(partitions),
                "--slices",
                "3",
                "--state-checkpoint-every",
                "2"));
    args.addAll(List.of(extra));
    TrainJob j = new TrainJob();
    new picocli.CommandLine(j)
        .setOverwrittenOptionsAllowed(true) // a later flag in extra wins
        .parseArgs(args.toArray(new String[0]));
    return j;
  }

  /**
   * Spark on {@code local-cluster[2,1,1024]}: an in-process master and two workers, each launching
   * an executor JVM, with the tests' {@link FaultInjection} plugin; returns once both executors
   * registered (at most 90 s).
   */
  static org.apache.spark.sql.SparkSession localCluster(String app) throws InterruptedException {
    org.apache.spark.sql.SparkSession spark =
        org.apache.spark.sql.SparkSession.builder()
            .master("local-cluster[2,1,1024]")
            .appName(app)
            .config("spark.executorEnv.SPARK_SCALA_VERSION", "2.12")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            .config("spark.executor.memory", "512m")
            .config("spark.executor.extraJavaOptions", "--add-modules=jdk.incubator.vector")
            .config("spark.plugins", FaultInjection.class.getName())
            .getOrCreate();
    awaitExecutors(spark, 2);
    return spark;
  }

  /** Waits (at most 90 s) until n executors besides the driver are registered. */
  static void awaitExecutors(org.apache.spark.sql.SparkSession spark, int n)
      throws InterruptedException {
    long deadline = System.nanoTime() + 90_000_000_000L;
    while (spark.sparkContext().statusTracker().getExecutorInfos().length < n + 1) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException(n + " executors did not register in 90 s");
      }
      Thread.sleep(200);
    }
  }

  static double engineLoss(MambaModel m, int[] ids) {
    return Scoring.meanNextTokenLoss(m, new Workspace(m.config), ids, 1, ids.length);
  }

  static double engineLoss(MambaModel m, String text) {
    return engineLoss(m, ByteTokenizer.INSTANCE.encode(text));
  }

  /** Writes JSON lines (each map one line, or a raw line when given as a byte[]). */
  static Path jsonLines(Path file, List<?> rows) throws IOException {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    for (Object r : rows) {
      if (r instanceof byte[] raw) {
        b.write(raw);
      } else {
        b.write(JSON.writeValueAsBytes(r));
      }
      b.write('\n');
    }
    Files.createDirectories(file.getParent());
    Files.write(file, b.toByteArray());
    return file;
  }

  /** Every line of the part files of a JSON-lines output directory, parsed. */
  @SuppressWarnings("unchecked")
  static List<Map<String, Object>> readJsonOutput(Path dir) throws IOException {
    List<Map<String, Object>> rows = new ArrayList<>();
    try (Stream<Path> files = Files.list(dir)) {
      for (Path f : files.sorted().toList()) {
        if (!f.getFileName().toString().startsWith("part-")) {
          continue;
        }
        for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
          if (!line.isBlank()) {
            rows.add(JSON.readValue(line, Map.class));
          }
        }
      }
    }
    return rows;
  }
}
