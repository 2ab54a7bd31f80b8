package org.mambaspark.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.NamedTensor;
import org.mambaspark.spark.DataParallelTraining;
import org.mambaspark.train.AdamW;
import org.mambaspark.train.GradientSum;
import org.mambaspark.train.LrSchedule;
import org.mambaspark.train.TrainStep;

/**
 * The training job with separate executor JVMs ({@code local-cluster[2,1,1024]}: an in-process
 * master and two workers that launch executor processes; Surefire sets spark.testing=1,
 * spark.test.home and SPARK_LOCAL_IP, see the surefire settings in the parent pom) gives the
 * single-process weights; and with model, input and checkpoints on HDFS (MiniDFSCluster), a run
 * resumed from an HDFS checkpoint ends where the uninterrupted one does.
 */
class TrainClusterTest {
  @TempDir static Path tmp;
  static SparkSession spark;
  static Path model;
  static Path input;
  static final int G = 8;
  static final int L = 17;

  @BeforeAll
  static void start() throws Exception {
    model = JobTestSupport.writeTrainingModel(tmp.resolve("init"), 5);
    input = JobTestSupport.writeIdRows(tmp.resolve("in.jsonl"), G, L, 64, 11);
    spark = JobTestSupport.localCluster("TrainClusterTest");
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  static TrainJob job(String init, String in, String out, long steps, String... extra) {
    return job(init, in, out, steps, 2, extra);
  }

  static TrainJob job(
      String init, String in, String out, long steps, int partitions, String... extra) {
    String[] args = new String[extra.length + 1];
    args[0] = "--no-chart";
    System.arraycopy(extra, 0, args, 1, extra.length);
    return JobTestSupport.trainJob(init, in, out, steps, G, L, partitions, args);
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

  @Test
  void separateExecutorJvmsGiveTheSingleProcessWeights() throws Exception {
    List<int[]> seqs = new ArrayList<>();
    for (String line : Files.readAllLines(input)) {
      String ids = line.substring(line.indexOf('[') + 1, line.indexOf(']'));
      seqs.add(Arrays.stream(ids.split(",")).mapToInt(s -> Integer.parseInt(s.trim())).toArray());
    }
    MambaWeights ref = Checkpoint.load(model);
    AdamW opt = new AdamW(ref, 0.9f, 0.999f, 1e-8f, 0.1f);
    MambaWeights scratch = MambaWeights.zerosLike(ref);
    for (int s = 0; s < 3; s++) {
      GradientSum g = TrainStep.gradient(new MambaModel(ref), seqs, 2, L, 256);
      TrainStep.apply(ref, opt, g, scratch, LrSchedule.constant(1e-3f), 1.0f);
    }
    int driverReloads = DataParallelTraining.trainingModelReloads();
    TrainJob j = job(model.toString(), input.toString(), tmp.resolve("out").toString(), 3);
    j.run(spark);
    double err = relErr(JobTestSupport.trained(j), ref);
    System.out.printf(
        "local-cluster[2,1,1024], 2 partitions, 3 steps: weights rel err %.2e vs the"
            + " single-process loop%n",
        err);
    assertTrue(err < 1e-5, "rel err " + err);
    assertEquals(
        driverReloads,
        DataParallelTraining.trainingModelReloads(),
        "the driver computes no gradient: the executor JVMs do");
    assertTrue(
        spark.sparkContext().statusTracker().getExecutorInfos().length == 3, "two executor JVMs");
  }

  /**
   * With one data partition the updates read the gradient where its task reduced it (no reducers):
   * the halted executor held it, and it is recomputed as a partition of two is.
   */
  @ParameterizedTest(name = "{0} data partitions")
  @ValueSource(ints = {2, 1})
  void aLostExecutorIsRecoveredFromTheStateCheckpointNotReinitialised(int partitions)
      throws Exception {
    String in = input.toString(), init = model.toString();
    TrainJob clean = job(init, in, tmp.resolve("clean-" + partitions).toString(), 5, partitions);
    clean.run(spark);
    // the state is checkpointed every 2 steps (JobTestSupport): step 4 recovers from step 2's
    FaultInjection.Seen seen = new FaultInjection.Seen();
    spark.sparkContext().addSparkListener(seen);
    spark.sparkContext().setLocalProperty(FaultInjection.HALT_EXECUTOR_IN_STEP, "4");
    spark
        .sparkContext()
        .setLocalProperty(
            FaultInjection.HALT_MARKER, tmp.resolve("halted-" + partitions).toString());
    TrainJob lost = job(init, in, tmp.resolve("lost-" + partitions).toString(), 5, partitions);
    try {
      lost.run(spark);
    } finally {
      spark.sparkContext().setLocalProperty(FaultInjection.HALT_EXECUTOR_IN_STEP, null);
      spark.sparkContext().setLocalProperty(FaultInjection.HALT_MARKER, null);
      spark.sparkContext().removeSparkListener(seen);
    }
    double err = relErr(JobTestSupport.trained(lost), JobTestSupport.trained(clean));
    System.out.printf(
        "P=%d, an executor JVM halted during step 4 of 5: weights rel err %.2e vs the run"
            + " without it; step losses %s vs %s%n",
        partitions,
        err,
        lost.metrics.stream().map(m -> LossChart.number(m, "loss")).toList(),
        clean.metrics.stream().map(m -> LossChart.number(m, "loss")).toList());
    assertTrue(Files.exists(tmp.resolve("halted-" + partitions)), "an executor halted");
    assertEquals(1, FaultInjection.Seen.atLeast(seen.executorsRemoved, 1), "one executor lost");
    assertTrue(err < 1e-6, "rel err " + err);
    JobTestSupport.awaitExecutors(spark, 2); // the worker starts a new one
  }

  @Test
  void checkpointsOnHdfsResumeTheSameTrajectory() throws Exception {
    Configuration conf = new Configuration();
    conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, tmp.resolve("dfs").toString());
    MiniDFSCluster dfs = new MiniDFSCluster.Builder(conf).numDataNodes(1).build();
    try {
      dfs.waitActive();
      String base = "hdfs://localhost:" + dfs.getNameNodePort();
      FileSystem fs = dfs.getFileSystem();
      fs.copyFromLocalFile(
          new org.apache.hadoop.fs.Path(model.toUri()),
          new org.apache.hadoop.fs.Path(base + "/models/init"));
      fs.copyFromLocalFile(
          new org.apache.hadoop.fs.Path(input.toUri()),
          new org.apache.hadoop.fs.Path(base + "/data/in.jsonl"));
      String init = base + "/models/init", in = base + "/data/in.jsonl";
      TrainJob straight = job(init, in, base + "/runs/straight", 3);
      straight.run(spark);
      String out = base + "/runs/stopped";
      job(init, in, out, 2, "--checkpoint-every", "1", "--keep", "1").run(spark);
      assertTrue(fs.exists(new org.apache.hadoop.fs.Path(out + "/checkpoint-00000002")));
      assertTrue(
          !fs.exists(new org.apache.hadoop.fs.Path(out + "/checkpoint-00000001")), "--keep 1");
      TrainJob resumed = job(init, in, out, 3, "--resume");
      resumed.run(spark);
      double err = relErr(JobTestSupport.trained(resumed), JobTestSupport.trained(straight));
      double a = LossChart.number(resumed.metrics.get(0), "loss");
      double b = LossChart.number(straight.metrics.get(2), "loss");
      System.out.printf(
          "HDFS checkpoints: resumed after step 2: step-3 loss %.7f vs %.7f uninterrupted;"
              + " weights rel err %.2e%n",
          a, b, err);
      assertEquals(b, a, 1e-6);
      assertTrue(err < 1e-6, "rel err " + err);
      assertTrue(fs.exists(new org.apache.hadoop.fs.Path(out + "/model.safetensors")));
      assertTrue(fs.exists(new org.apache.hadoop.fs.Path(out + "/config.json")));
      assertEquals(
          3,
          new String(
                  fs.open(new org.apache.hadoop.fs.Path(out + "/metrics.jsonl")).readAllBytes(),
                  StandardCharsets.UTF_8)
              .lines()
              .count(),
          "the resumed run's metrics.jsonl holds steps 1-3");
    } finally {
      dfs.shutdown();
    }
  }
}
