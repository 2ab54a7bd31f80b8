package org.mambaspark.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.mambaspark.cli.MambaCli;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.Architecture;
import org.mambaspark.model.Backends;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.ModelRunner;
import org.mambaspark.model.NamedTensor;
import org.mambaspark.tokenizer.Tokenizers;
import org.mambaspark.train.AdamW;
import org.mambaspark.train.GradientSum;
import org.mambaspark.train.LrSchedule;
import org.mambaspark.train.TrainStep;
import scala.Tuple2;

/**
 * The Spark training job: P = 1, 2, 3 partitions give the single-process weights and losses after 3
 * steps; a task that fails once is retried and counted once; a stopped and resumed run continues
 * the same trajectory; the CLI.
 */
class TrainJobTest {
  @TempDir static Path tmp;
  static SparkSession spark;
  static Path model;
  static Path input;
  static final int G = 6;
  static final int L = 17;

  @BeforeAll
  static void start() throws Exception {
    model = JobTestSupport.writeTrainingModel(tmp.resolve("init"), 4);
    input = JobTestSupport.writeIdRows(tmp.resolve("in.jsonl"), G, L, 64, 9);
    spark = session();
  }

  /** local[2,2]: two threads, a failed task is retried once; the tests' fault injection. */
  static SparkSession session() {
    return SparkSession.builder()
        .master("local[2,2]")
        .appName("TrainJobTest")
        .config("spark.ui.enabled", "false")
        .config("spark.plugins", FaultInjection.class.getName())
        .getOrCreate();
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  static TrainJob job(String out, int partitions, long steps, String... extra) {
    return JobTestSupport.trainJob(
        model.toString(), input.toString(), out, steps, G, L, partitions, extra);
  }

  /** One step in 2 partitions on another input. */
  static TrainJob oneStepOn(Path in, String out, String... extra) {
    return JobTestSupport.trainJob(model.toString(), in.toString(), out, 1, G, L, 2, extra);
  }

  /** The single-process loop on the same G sequences: 3 steps of TrainStep. */
  static double[] reference(MambaWeights w) throws Exception {
    List<int[]> seqs = new ArrayList<>();
    for (String line : Files.readAllLines(input)) {
      String ids = line.substring(line.indexOf('[') + 1, line.indexOf(']'));
      seqs.add(Arrays.stream(ids.split(",")).mapToInt(s -> Integer.parseInt(s.trim())).toArray());
    }
    AdamW opt = new AdamW(w, 0.9f, 0.999f, 1e-8f, 0.1f);
    MambaWeights scratch = MambaWeights.zerosLike(w);
    double[] losses = new double[3];
    for (int s = 0; s < 3; s++) {
      GradientSum g = TrainStep.gradient(new MambaModel(w), seqs, 2, L, 256);
      losses[s] = TrainStep.apply(w, opt, g, scratch, LrSchedule.constant(1e-3f), 1.0f).loss;
    }
    return losses;
  }

  static double relErr(MambaWeights a, MambaWeights b) {
    double num = 0, den = 0;
    List<NamedTensor> x = a.parameters(), y = b.parameters();
    for (int i = 0; i < x.size(); i++) {
      for (int j = 0; j < x.get(i).data.length; j++) {
        double d = (double) x.get(i).data[j] - y.get(i).data[j];
        num += d * d;
        den += (double) y.get(i).data[j] * y.get(i).data[j];
      }
    }
    return Math.sqrt(num / den);
  }

  static double loss(String metricsLine) {
    int i = metricsLine.indexOf("\"loss\":") + 7;
    return Double.parseDouble(metricsLine.substring(i, metricsLine.indexOf(',', i)));
  }

  /** Mamba-2 and Falcon-Mamba train the same way: P = 1 and 3 give the single-process update. */
  @ParameterizedTest
  @EnumSource(
      value = Architecture.class,
      names = {"MAMBA2", "FALCON_MAMBA"})
  void otherArchitecturesGiveTheSingleProcessUpdate(Architecture arch) throws Exception {
    Path m = JobTestSupport.writeTrainingModel(tmp.resolve("init-" + arch), 5, arch);
    MambaWeights ref = Checkpoint.load(m);
    double[] want = reference(ref);
    for (int p : new int[] {1, 3}) {
      String out = tmp.resolve("out-" + arch + "-p" + p).toString();
      TrainJob j = JobTestSupport.trainJob(m.toString(), input.toString(), out, 3, G, L, p);
      j.run(spark);
      double err = relErr(JobTestSupport.trained(j), ref);
      System.out.printf("%s P=%d: weights rel err %.2e vs single process%n", arch, p, err);
      assertTrue(err < 1e-5, arch + " P=" + p + " rel err " + err);
      for (int s = 0; s < 3; s++) {
        assertEquals(want[s], loss(j.metrics.get(s)), 1e-5 * want[s]);
      }
    }
  }

  @Test
  void partitionsGiveTheSingleProcessUpdate() throws Exception {
    MambaWeights ref = Checkpoint.load(model);
    double[] want = reference(ref);
    for (int p : new int[] {1, 2, 3}) {
      TrainJob j = job(tmp.resolve("out-p" + p).toString(), p, 3);
      j.run(spark);
      double err = relErr(JobTestSupport.trained(j), ref);
      System.out.printf(
          "P=%d: weights rel err %.2e vs single process; losses %s (single process %s)%n",
          p,
          err,
          j.metrics.stream().map(m -> String.format("%.7f", loss(m))).toList(),
          Arrays.toString(want));
      assertTrue(err < 1e-5, "P=" + p + " rel err " + err);
      for (int s = 0; s < 3; s++) {
        assertEquals(want[s], loss(j.metrics.get(s)), 1e-5 * want[s]);
      }
      MambaWeights last = Checkpoint.load(tmp.resolve("out-p" + p).resolve("checkpoint-00000003"));
      assertTrue(
          relErr(last, JobTestSupport.trained(j)) == 0,
          "the final model at the top of the output is the last checkpoint's");
    }
  }

  @Test
  void aFailedTaskIsRetriedAndCountedOnce() throws Exception {
    TrainJob clean = job(tmp.resolve("clean").toString(), 2, 3);
    clean.run(spark);
    FaultInjection.Seen seen = new FaultInjection.Seen();
    spark.sparkContext().addSparkListener(seen);
    spark.sparkContext().setLocalProperty(FaultInjection.FAIL_FIRST_ATTEMPT_OF_PARTITION, "1");
    try {
      TrainJob faulty = job(tmp.resolve("faulty").toString(), 2, 3);
      faulty.run(spark);
      double err = relErr(JobTestSupport.trained(faulty), JobTestSupport.trained(clean));
      // each step's gradient and update jobs have a partition 1 (2 data partitions, 3 slices)
      int failed = FaultInjection.Seen.atLeast(seen.injectedFailures, 6);
      System.out.printf(
          "%d task attempts of partition 1 failed after doing their work (3 steps): weights rel"
              + " err %.2e%n",
          failed, err);
      assertTrue(failed >= 6, failed + " injected failures seen");
      // reducers add the partitions' sums in partition order, so a retried task changes nothing;
      // what remains is the engine's own run-to-run rounding (its Vector API sums round differently
      // before and after the JIT compiles them)
      assertTrue(err < 1e-6, "rel err " + err);
    } finally {
      spark.sparkContext().setLocalProperty(FaultInjection.FAIL_FIRST_ATTEMPT_OF_PARTITION, null);
      spark.sparkContext().removeSparkListener(seen);
    }
  }

  @Test
  void resumedRunContinuesTheSameTrajectory() throws Exception {
    TrainJob straight = job(tmp.resolve("straight").toString(), 2, 3);
    straight.run(spark);
    String out = tmp.resolve("stopped").toString();
    job(out, 2, 2, "--checkpoint-every", "1").run(spark); // stopped after step 2
    assertTrue(Files.isDirectory(Path.of(out, "checkpoint-00000002")));
    TrainJob resumed = job(out, 2, 3, "--resume");
    resumed.run(spark);
    double err = relErr(JobTestSupport.trained(resumed), JobTestSupport.trained(straight));
    System.out.printf(
        "resumed after step 2: loss %.7f vs %.7f uninterrupted; weights rel err %.2e%n",
        loss(resumed.metrics.get(0)), loss(straight.metrics.get(2)), err);
    assertEquals(loss(straight.metrics.get(2)), loss(resumed.metrics.get(0)), 1e-6);
    assertTrue(err < 1e-6);
  }

  @Test
  void aFreshModelIsDrawnOnTheExecutorsAsTheSingleProcessDrawsIt() throws Exception {
    // no --init: each slice's task draws its own values; P = 2 and 3 slices must start from
    // exactly Initialization.initialize(tiny, seed 0) to end where the single-process loop does
    MambaWeights ref =
        org.mambaspark.model.Initialization.initialize(
            MambaConfig.builder().vocabSize(256).hiddenSize(64).numLayers(2).build(), 0);
    double[] want = reference(ref);
    TrainJob j = job(tmp.resolve("fresh").toString(), 2, 3, "--no-chart");
    j.init = null;
    j.preset = "tiny";
    j.run(spark);
    double err = relErr(JobTestSupport.trained(j), ref);
    System.out.printf(
        "--preset tiny drawn on the executors, P=2: weights rel err %.2e vs the single-process"
            + " loop from Initialization.initialize; losses %s vs %s%n",
        err,
        j.metrics.stream().map(m -> String.format("%.7f", loss(m))).toList(),
        Arrays.toString(want));
    assertTrue(err < 1e-5, "rel err " + err);
    for (int s = 0; s < 3; s++) {
      assertEquals(want[s], loss(j.metrics.get(s)), 1e-5 * want[s]);
    }
  }

  @Test
  void aCheckpointInSeveralFilesLoadsAndResumesTheSameTrajectory() throws Exception {
    // 16k files: the 45 KB model in Hugging Face's sharded layout, each file written by a task;
    // no temporary file of a failed attempt is left behind
    String single = tmp.resolve("one-file").toString(), sharded = tmp.resolve("shards").toString();
    TrainJob straight = job(single, 2, 3, "--no-chart", "--checkpoint-every", "1");
    straight.run(spark);
    // every stage's partition 1 fails once after doing its work, the file writers' included
    spark.sparkContext().setLocalProperty(FaultInjection.FAIL_FIRST_ATTEMPT_OF_PARTITION, "1");
    try {
      job(sharded, 2, 2, "--no-chart", "--checkpoint-every", "1", "--checkpoint-shard-size", "16k")
          .run(spark);
    } finally {
      spark.sparkContext().setLocalProperty(FaultInjection.FAIL_FIRST_ATTEMPT_OF_PARTITION, null);
    }
    Path cp = Path.of(sharded, "checkpoint-00000002");
    long files;
    try (java.util.stream.Stream<Path> all = Files.list(cp)) {
      files =
          all.filter(
                  f -> f.getFileName().toString().matches("model-\\d{5}-of-\\d{5}\\.safetensors"))
              .count();
    }
    assertTrue(files >= 3, files + " model files");
    try (java.util.stream.Stream<Path> all = Files.list(cp)) {
      assertEquals(
          List.of(),
          all.map(f -> f.getFileName().toString()).filter(f -> f.endsWith(".tmp")).toList());
    }
    assertTrue(
        !Files.exists(cp.resolve(Checkpoint.WEIGHTS))
            && Files.exists(cp.resolve(Checkpoint.INDEX)));
    assertTrue(Files.exists(cp.resolve(org.mambaspark.train.TrainingState.INDEX)));
    // the same weights and moments as the one-file checkpoint of the same step
    Path one = Path.of(single, "checkpoint-00000002");
    MambaWeights a = Checkpoint.load(cp), b = Checkpoint.load(one);
    AdamW ma = new AdamW(a, 0.9f, 0.999f, 1e-8f, 0.1f),
        mb = new AdamW(b, 0.9f, 0.999f, 1e-8f, 0.1f);
    org.mambaspark.train.TrainingState.load(cp, ma);
    org.mambaspark.train.TrainingState.load(one, mb);
    double ew = relErr(a, b), em = relErr(ma.firstMoment(), mb.firstMoment());
    double ev = relErr(ma.secondMoment(), mb.secondMoment());
    TrainJob resumed =
        job(sharded, 2, 3, "--resume", "--no-chart", "--checkpoint-shard-size", "16k");
    resumed.run(spark);
    MambaWeights top = Checkpoint.load(Path.of(sharded)); // the index and shards at the top
    double err = relErr(top, JobTestSupport.trained(straight));
    System.out.printf(
        "checkpoint in %d model files: weights / moments rel diff %.2e / %.2e / %.2e vs one file;"
            + " resumed from it: loss %.7f vs %.7f, final weights rel err %.2e%n",
        files, ew, em, ev, loss(resumed.metrics.get(0)), loss(straight.metrics.get(2)), err);
    assertTrue(ew < 1e-6 && em < 1e-6 && ev < 1e-6, ew + " " + em + " " + ev);
    assertTrue(!Files.exists(Path.of(sharded, Checkpoint.WEIGHTS)));
    assertEquals(loss(straight.metrics.get(2)), loss(resumed.metrics.get(0)), 1e-6);
    assertTrue(err < 1e-6, "rel err " + err);
  }

  @Test
  void evalLossIsTheMeanLossOfTheHeldOutSequencesAndTheChartIsAPng() throws Exception {
    String out = tmp.resolve("eval").toString();
    // the training input as the held-out set: the final eval loss is the final model's mean loss
    TrainJob j = job(out, 2, 3, "--eval-input", input.toString(), "--eval-every", "2");
    j.run(spark);
    assertEquals(2, j.evalLosses.size(), "after step 2 and at the end");
    List<int[]> seqs = new ArrayList<>();
    for (String line : Files.readAllLines(input)) {
      String ids = line.substring(line.indexOf('[') + 1, line.indexOf(']'));
      seqs.add(Arrays.stream(ids.split(",")).mapToInt(x -> Integer.parseInt(x.trim())).toArray());
    }
    double[] direct;
    try (ModelRunner cpu = Backends.cpu().open(new MambaModel(JobTestSupport.trained(j)))) {
      direct = TrainStep.lossSum(cpu, seqs, 4, L);
    }
    double want = direct[0] / direct[1];
    double got = j.evalLosses.get(1)[1];
    String last = j.metrics.get(2);
    System.out.printf(
        "eval loss %.9f (job, 2 partitions) vs %.9f (engine on the same sequences): |Δ| %.2e%n",
        got, want, Math.abs(got - want));
    assertEquals(want, got, 1e-6 * want);
    assertEquals(want, LossChart.number(last, "eval_loss"), 1e-5);
    assertEquals(G * (L - 1), LossChart.number(last, "eval_tokens"));
    assertEquals(null, LossChart.number(j.metrics.get(0), "eval_loss"));

    Path png = Path.of(out, TrainJob.LOSS_PNG);
    byte[] bytes = Files.readAllBytes(png);
    java.awt.image.BufferedImage img = javax.imageio.ImageIO.read(png.toFile());
    System.out.printf(
        "loss.png: %d bytes, %d x %d%n", bytes.length, img.getWidth(), img.getHeight());
    assertTrue(
        bytes[0] == (byte) 0x89 && bytes[1] == 'P' && bytes[2] == 'N' && bytes[3] == 'G',
        "PNG signature");
    assertEquals(900, img.getWidth());
    assertEquals(540, img.getHeight());
    assertTrue(bytes.length > 10_000 && bytes.length < 1_000_000, bytes.length + " bytes");
  }

  @Test
  void evalFractionHoldsOutADeterministicShare() {
    int held = 0;
    for (long i = 0; i < 100_000; i++) {
      if (TrainJob.heldOut(7, i, 0.1)) {
        held++;
      }
    }
    System.out.printf("--eval-fraction 0.1: %d of 100000 held out%n", held);
    assertTrue(Math.abs(held - 10_000) < 400, held + " held out");
    assertEquals(TrainJob.heldOut(7, 12345, 0.1), TrainJob.heldOut(7, 12345, 0.1));
  }

  @Test
  void averagingWithOnePartitionIsTheSingleProcessLoop() throws Exception {
    MambaWeights ref = Checkpoint.load(model);
    double[] want = reference(ref);
    TrainJob j =
        job(tmp.resolve("avg-p1").toString(), 1, 3, "--sync", "average", "--local-steps", "3");
    j.run(spark);
    double err = relErr(JobTestSupport.trained(j), ref);
    System.out.printf(
        "--sync average, H=3, P=1: weights rel err %.2e vs the single-process loop; losses %s vs"
            + " %s%n",
        err,
        j.metrics.stream().map(m -> String.format("%.7f", loss(m))).toList(),
        Arrays.toString(want));
    assertTrue(err < 1e-6, "rel err " + err);
    for (int s = 0; s < 3; s++) {
      assertEquals(want[s], loss(j.metrics.get(s)), 1e-6 * want[s]);
    }
  }

  @Test
  void averagingWithTwoPartitionsLowersTheLoss() throws Exception {
    String out = tmp.resolve("avg-p2").toString();
    TrainJob j =
        job(out, 2, 6, "--sync", "average", "--local-steps", "3", "--eval-input", input.toString());
    j.run(spark);
    MambaWeights start = Checkpoint.load(model);
    double before;
    try (ModelRunner cpu = Backends.cpu().open(new MambaModel(start))) {
      List<int[]> seqs = new ArrayList<>();
      for (String line : Files.readAllLines(input)) {
        String ids = line.substring(line.indexOf('[') + 1, line.indexOf(']'));
        seqs.add(Arrays.stream(ids.split(",")).mapToInt(x -> Integer.parseInt(x.trim())).toArray());
      }
      double[] d = TrainStep.lossSum(cpu, seqs, 4, L);
      before = d[0] / d[1];
    }
    double after = j.evalLosses.get(j.evalLosses.size() - 1)[1];
    System.out.printf(
        "--sync average, H=3, P=2, 6 steps: loss on the data %.5f -> %.5f; step losses %s%n",
        before, after, j.metrics.stream().map(m -> String.format("%.5f", loss(m))).toList());
    assertEquals(6, j.metrics.size());
    assertTrue(after < before - 0.05, before + " -> " + after);
    // resumable at round boundaries: the final checkpoint holds step 6
    assertTrue(Files.isDirectory(Path.of(out, "checkpoint-00000006")));
  }

  /**
   * Every step's batch (G consecutive positions of the seeded permutation, wrapping at the end)
   * splits evenly over the partitions: a step waits for its largest share.
   */
  @Test
  void eachStepsBatchSplitsEvenlyOverThePartitions() {
    JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    int n = 23, g = 6;
    long[] order = TrainJob.permutation(n, 11);
    List<Tuple2<Long, int[]>> seqs = new ArrayList<>();
    for (long i = 0; i < n; i++) {
      seqs.add(new Tuple2<>(i, new int[] {(int) i}));
    }
    Broadcast<int[]> ranks = sc.broadcast(TrainJob.ranks(order));
    for (int p : new int[] {2, 3, 4}) {
      List<List<Tuple2<Long, int[]>>> parts =
          TrainJob.placed(JavaPairRDD.fromJavaRDD(sc.parallelize(seqs, 5)), ranks, p)
              .glom()
              .collect();
      int[] partitionOf = new int[n];
      int seen = 0;
      for (int q = 0; q < parts.size(); q++) {
        for (Tuple2<Long, int[]> t : parts.get(q)) {
          assertEquals(t._1().intValue(), t._2()[0], "index and sequence stay together");
          partitionOf[t._1().intValue()] = q;
          seen++;
        }
      }
      assertEquals(n, seen);
      int worst = 0;
      for (int step = 0; step < 8; step++) { // past the end: the batches wrap around
        int[] share = new int[p];
        for (int i = 0; i < g; i++) {
          share[partitionOf[(int) order[(step * g + i) % n]]]++;
        }
        int max = Arrays.stream(share).max().getAsInt(),
            min = Arrays.stream(share).min().getAsInt();
        worst = Math.max(worst, max - min);
        // G/p each, off by one where G is not a multiple of p or the batch wraps (n mod p != 0)
        assertTrue(
            max - min <= (g % p == 0 && step * g + g <= n ? 0 : 2),
            "P=" + p + " step " + step + ": " + Arrays.toString(share));
      }
      System.out.printf(
          "P=%d: a step's batch of %d over the partitions, largest spread %d%n", p, g, worst);
    }
    ranks.destroy();
  }

  @Test
  void driverBytesAStepAreFlatInPartitionsAndBelowOneModel() throws Exception {
    Path big =
        JobTestSupport.writeModel(tmp.resolve("bytes-model")); // V=256, D=32: 4x the tiny one
    Path rows = JobTestSupport.writeIdRows(tmp.resolve("bytes-in.jsonl"), G, L, 256, 3);
    long modelBytes = TrainStep.parameterBytes(Checkpoint.load(big));
    long[] driver = new long[4];
    long[] shuffle = new long[4];
    for (int p = 1; p <= 3; p++) {
      TrainJob j =
          JobTestSupport.trainJob(
              big.toString(),
              rows.toString(),
              tmp.resolve("bytes-p" + p).toString(),
              2,
              G,
              L,
              p,
              "--no-chart");
      j.run(spark);
      driver[p] = (long) (double) LossChart.number(j.metrics.get(1), "driver_bytes");
      shuffle[p] = (long) (double) LossChart.number(j.metrics.get(1), "shuffle_bytes");
      System.out.printf(
          "P=%d: driver bytes %d (%.3f x model bytes %d), shuffle bytes %d (%.2f x)%n",
          p,
          driver[p],
          (double) driver[p] / modelBytes,
          modelBytes,
          shuffle[p],
          (double) shuffle[p] / modelBytes);
      assertTrue(driver[p] <= 1.1 * modelBytes, "P=" + p + ": " + driver[p] + " driver bytes");
      // no shuffle on a step's path: the reducers read the cached gradients' slices and the data
      // partitions the cached weight slices, through Spark's block manager
      assertTrue(shuffle[p] < modelBytes / 100, "P=" + p + ": " + shuffle[p] + " shuffle bytes");
    }
    // a gradient per partition through the driver would add 2 models' bytes from P=1 to P=3
    assertTrue(
        Math.abs(driver[3] - driver[1]) < modelBytes / 4,
        "driver bytes " + driver[1] + " at P=1, " + driver[3] + " at P=3");
  }

  @Test
  void bf16GradientsStayCloseToFp32() throws Exception {
    TrainJob fp32 = job(tmp.resolve("fp32").toString(), 2, 3, "--no-chart");
    fp32.run(spark);
    TrainJob bf16 = job(tmp.resolve("bf16").toString(), 2, 3, "--no-chart", "--bf16-gradients");
    bf16.run(spark);
    double err = relErr(JobTestSupport.trained(bf16), JobTestSupport.trained(fp32));
    double worst = 0;
    for (int s = 0; s < 3; s++) {
      worst =
          Math.max(
              worst,
              Math.abs(loss(bf16.metrics.get(s)) - loss(fp32.metrics.get(s)))
                  / loss(fp32.metrics.get(s)));
    }
    System.out.printf(
        "--bf16-gradients, 3 steps: losses %s vs fp32 %s (largest rel diff %.2e); weights rel diff"
            + " %.2e%n",
        bf16.metrics.stream().map(m -> String.format("%.7f", loss(m))).toList(),
        fp32.metrics.stream().map(m -> String.format("%.7f", loss(m))).toList(),
        worst,
        err);
    assertTrue(err > 0, "bf16 changes the gradients");
    assertTrue(worst < 1e-4 && err < 1e-3, worst + " " + err);
  }

  @Test
  void anExistingOutputIsRefusedUnlessResumedOrOverwritten() throws Exception {
    String out = tmp.resolve("taken").toString();
    job(out, 1, 1, "--no-chart").run(spark);
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> job(out, 1, 1).run(spark));
    System.out.println("existing output: " + e.getMessage());
    assertTrue(e.getMessage().contains("--output " + out + " exists"), e.getMessage());
    assertTrue(e.getMessage().contains("--overwrite"), e.getMessage());
    // --overwrite with a run that fails before its first checkpoint: the old output stays
    IllegalArgumentException failed =
        assertThrows(
            IllegalArgumentException.class,
            () -> job(out, 1, 1, "--no-chart", "--overwrite", "--global-batch", "100").run(spark));
    System.out.println("--overwrite, failing run: " + failed.getMessage());
    assertTrue(Files.exists(Path.of(out, "checkpoint-00000001", "model.safetensors")));
    assertTrue(Files.exists(Path.of(out, "model.safetensors")), "the old run is intact");
    TrainJob again = job(out, 1, 2, "--no-chart", "--overwrite");
    again.run(spark);
    assertEquals(2, again.metrics.size(), "a fresh run of 2 steps");
    assertTrue(!Files.exists(Path.of(out, "checkpoint-00000001")), "the old run is gone");
  }

  @Test
  void aResumeOfAnotherRunNamesWhatDiffers() throws Exception {
    String out = tmp.resolve("other-run").toString();
    job(out, 2, 1, "--no-chart").run(spark);
    Path more = JobTestSupport.writeIdRows(tmp.resolve("more.jsonl"), G + 2, L, 64, 10);
    Path otherModel = JobTestSupport.writeModel(tmp.resolve("other-shape")); // V=256, bytes
    TrainJob other =
        JobTestSupport.trainJob(
            otherModel.toString(), more.toString(), out, 2, G, L, 2, "--resume", "--seed", "5");
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> other.run(spark));
    System.out.println("resume mismatch: " + e.getMessage());
    assertTrue(e.getMessage().contains("not the same run"), e.getMessage());
    assertTrue(
        e.getMessage().contains("config MambaConfig{V=64, D=24")
            && e.getMessage().contains("tokenizer none there, sha256:")
            && e.getMessage().contains("input " + input)
            && e.getMessage().contains("sequences 6 there, 8 now")
            && e.getMessage().contains("seed 0 there, 5 now"),
        e.getMessage());
  }

  @Test
  void anIdOutsideTheVocabularyIsAOneLineErrorNamingTheRow() throws Exception {
    List<String> lines = new ArrayList<>(Files.readAllLines(input));
    lines.set(3, lines.get(3).replaceFirst("\\[\\d+", "[64")); // V = 64
    Path bad = Files.write(tmp.resolve("oov.jsonl"), lines);
    TrainJob j = oneStepOn(bad, tmp.resolve("oov").toString());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> j.run(spark));
    System.out.println("out of vocabulary: " + e.getMessage());
    assertEquals(
        "--input "
            + bad
            + " row 3: input_ids value 64 at position 0 is outside the model's vocabulary [0, 64)",
        e.getMessage());
  }

  @Test
  void unusableRowsAreCountedAndStrictNamesTheFirst() throws Exception {
    List<String> lines = new ArrayList<>(Files.readAllLines(input));
    lines.add(2, "{\"input_ids\": []}");
    lines.add(5, "{\"input_ids\": null}");
    lines.add(6, "{\"other\": 1}");
    Path messy = Files.write(tmp.resolve("messy.jsonl"), lines);
    TrainJob j = oneStepOn(messy, tmp.resolve("messy").toString(), "--no-chart");
    j.run(spark);
    System.out.printf(
        "messy input: %d unusable rows; metrics %s%n", j.unusableRows, j.metrics.get(0));
    assertEquals(3, j.unusableRows);
    assertEquals(3.0, LossChart.number(j.metrics.get(0), "unusable_rows"));
    TrainJob strict = oneStepOn(messy, tmp.resolve("messy-strict").toString(), "--strict");
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> strict.run(spark));
    System.out.println("--strict: " + e.getMessage());
    assertEquals("--input " + messy + " row 2: empty (--strict)", e.getMessage());
  }

  @Test
  void textIsTokenizedOnTheExecutorsWithoutTheDriversModelFolder() throws Exception {
    // the driver's model folder may be a local copy of an HDFS checkpoint, on another host than
    // the executors: the tokenizer travels with the tasks
    Path hf = Path.of("..", "mamba-udf", "src", "test", "resources", "tokenizer", "tokenizer.json");
    Path kept = Files.createDirectories(tmp.resolve("tokenizer-kept"));
    Path gone = Files.createDirectories(tmp.resolve("tokenizer-gone"));
    Files.copy(hf, kept.resolve(Tokenizers.TOKENIZER_JSON));
    Files.copy(hf, gone.resolve(Tokenizers.TOKENIZER_JSON));
    Path text = tmp.resolve("text.txt");
    List<String> lines = new ArrayList<>();
    for (int i = 0; i < 40; i++) {
      lines.add("the quick brown fox " + i + " jumps over the lazy dog, line " + (i * 7));
    }
    Files.write(text, lines);
    TrainInput withFolder =
        TrainInput.read(spark, "--input", text.toString(), null, kept.toString(), 8, 0, 270, true);
    TrainInput withoutFolder =
        TrainInput.read(spark, "--input", text.toString(), null, gone.toString(), 8, 0, 270, true);
    org.apache.hadoop.fs.FileUtil.fullyDelete(gone.toFile()); // before any task runs
    List<int[]> want = withFolder.sequences.collect();
    List<int[]> got = withoutFolder.sequences.collect();
    assertEquals(want.size(), got.size());
    int maxId = 0;
    for (int i = 0; i < want.size(); i++) {
      assertTrue(Arrays.equals(want.get(i), got.get(i)), "sequence " + i);
      maxId = Math.max(maxId, Arrays.stream(got.get(i)).max().orElse(0));
    }
    System.out.printf(
        "text tokenized on the executors without the driver's folder: %d sequences of 8, ids up"
            + " to %d (the BPE's merges: not the byte fallback)%n",
        got.size(), maxId);
    assertTrue(got.size() > 10);
    assertTrue(maxId >= 256, "max id " + maxId);
  }

  @Test
  void aDriverHeapBelowTheWeightsAndMomentsIsRefusedInOneLine() {
    MambaConfig big = MambaConfig.preset("mamba-1.4b");
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> TrainJob.requireDriverHeap(big, 4L << 30, "--sync average: the driver holds"));
    System.out.println("mamba-1.4b, driver heap 4 GB: " + e.getMessage());
    assertTrue(e.getMessage().contains("4,096 MB of heap"), e.getMessage());
    assertTrue(e.getMessage().contains(String.format("%,d MB", (12 * big.parameterCount()) >> 20)));
    TrainJob.requireDriverHeap(big, 12 * big.parameterCount(), "-"); // exactly enough: no error
  }

  @Test
  void theCliCommand() throws Exception {
    String out = tmp.resolve("cli").toString();
    spark.stop(); // the command makes its own embedded session
    try {
      int code =
          MambaCli.execute(
              "train",
              "--init",
              model.toString(),
              "--input",
              input.toString(),
              "--output",
              out,
              "--steps",
              "3",
              "--global-batch",
              Integer.toString(G),
              "--seq-len",
              Integer.toString(L),
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
              "--master",
              "local[2]",
              "--partitions",
              "2");
      assertEquals(0, code);
      assertTrue(
          Files.exists(Path.of(out, "config.json"))
              && Files.exists(Path.of(out, "model.safetensors")));
    } finally {
      spark = session();
    }
  }
}
