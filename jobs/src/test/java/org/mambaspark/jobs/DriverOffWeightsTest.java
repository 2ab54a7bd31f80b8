package org.mambaspark.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.train.AdamW;
import org.mambaspark.train.GradientSum;
import org.mambaspark.train.LrSchedule;
import org.mambaspark.train.TrainStep;

/**
 * The training driver never holds the weights: TrainJob runs in a JVM of its own whose whole heap
 * is smaller than the model's fp32 weights alone, against an executor JVM ({@code
 * local-cluster[1,1,MB]}). The run reads --init on the executor, steps, and writes its checkpoint
 * (in several files) from the executor; its weights are the single-process step's. A driver that
 * held the weights, or the weights and moments as it once did (12 bytes a parameter), cannot run
 * here: it runs out of heap.
 */
class DriverOffWeightsTest {
  static final String DRIVER_HEAP = "96m";

  @Test
  void aDriverHeapSmallerThanTheWeightsTrainsAndCheckpoints(@TempDir Path tmp) throws Exception {
    // a wide vocabulary: 27 M parameters (110 MB of weights), little compute a token
    MambaConfig c =
        MambaConfig.builder().vocabSize(50280).hiddenSize(512).numLayers(1).stateSize(8).build();
    long weightBytes = 4 * c.parameterCount();
    long heap = org.apache.spark.network.util.JavaUtils.byteStringAsBytes(DRIVER_HEAP);
    assertTrue(heap < weightBytes, "the driver's heap must be below the weights");
    MambaWeights w = Initialization.initialize(c, 3);
    Path init = Files.createDirectories(tmp.resolve("init"));
    Checkpoint.save(w, init);
    int G = 2, L = 16;
    Path rows = JobTestSupport.writeIdRows(tmp.resolve("in.jsonl"), G, L, c.vocabSize, 5);
    Path out = tmp.resolve("out");

    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-Xmx" + DRIVER_HEAP);
    for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (a.startsWith("--add-") || a.startsWith("@")) { // the Java 17 opens and the Vector API
        cmd.add(a);
      }
    }
    for (String p : new String[] {"spark.testing", "spark.test.home"}) {
      cmd.add("-D" + p + "=" + System.getProperty(p));
    }
    cmd.addAll(
        List.of(
            // Spark refuses a JVM below 450 MB unless told its "system memory": the driver's
            // memory manager then budgets 512 MB of storage it does not have, which only makes
            // running out of heap easier
            "-Dspark.testing.memory=536870912",
            "-Dspark.ui.enabled=false",
            "-Dspark.driver.host=127.0.0.1",
            "-Dspark.driver.bindAddress=127.0.0.1",
            "-Dspark.executorEnv.SPARK_SCALA_VERSION=2.12",
            "-Dspark.executor.memory=1536m",
            "-Dspark.executor.extraJavaOptions=--add-modules=jdk.incubator.vector",
            "-cp",
            System.getProperty("java.class.path"),
            TrainJob.class.getName(),
            "--master",
            "local-cluster[1,1,1536]",
            "--init",
            init.toString(),
            "--input",
            rows.toString(),
            "--output",
            out.toString(),
            "--steps",
            "1",
            "--global-batch",
            Integer.toString(G),
            "--micro-batch",
            "1",
            "--seq-len",
            Integer.toString(L),
            "--partitions",
            "1",
            "--lr",
            "1e-3",
            "--schedule",
            "constant",
            "--weight-decay",
            "0.1",
            "--clip-grad",
            "1.0",
            "--checkpoint-shard-size",
            "64m",
            "--no-chart"));
    Path log = tmp.resolve("driver.log");
    ProcessBuilder pb =
        new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
    pb.environment().put("SPARK_LOCAL_IP", "127.0.0.1");
    Process driver = pb.start();
    boolean ended = driver.waitFor(480, TimeUnit.SECONDS);
    if (!ended) {
      driver.destroyForcibly();
    }
    String text = Files.readString(log, StandardCharsets.UTF_8);
    int code = ended ? driver.exitValue() : -1;
    if (code != 0) {
      System.out.println(text.substring(Math.max(0, text.length() - 6000)));
    }
    assertEquals(0, code, "the driver at -Xmx" + DRIVER_HEAP + " exits 0 (log above)");

    String[] files = out.toFile().list((d, n) -> n.matches("model-\\d{5}-of-\\d{5}\\.safetensors"));
    MambaWeights trained = Checkpoint.load(out);
    List<int[]> seqs = new ArrayList<>();
    for (String line : Files.readAllLines(rows)) {
      String ids = line.substring(line.indexOf('[') + 1, line.indexOf(']'));
      seqs.add(Arrays.stream(ids.split(",")).mapToInt(x -> Integer.parseInt(x.trim())).toArray());
    }
    AdamW opt = new AdamW(w, 0.9f, 0.999f, 1e-8f, 0.1f);
    GradientSum g = TrainStep.gradient(new MambaModel(w), seqs, 1, L, 256);
    TrainStep.apply(w, opt, g, MambaWeights.zerosLike(w), LrSchedule.constant(1e-3f), 1.0f);
    double err = TrainJobTest.relErr(trained, w);
    System.out.printf(
        "TrainJob driver at -Xmx%s (%d MB), model of %,d parameters (%d MB of weights, %d MB with"
            + " both moments) on one executor JVM: 1 step, checkpoint in %d model files written by"
            + " the executor; weights rel err %.2e vs the single-process step%n",
        DRIVER_HEAP,
        heap >> 20,
        c.parameterCount(),
        weightBytes >> 20,
        (3 * weightBytes) >> 20,
        files == null ? 0 : files.length,
        err);
    assertTrue(files != null && files.length >= 2, "a checkpoint in several files");
    assertTrue(err < 1e-5, "rel err " + err);
    assertTrue(new File(out.toFile(), "checkpoint-00000001").isDirectory());
  }
}
