package org.mambaspark.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.MambaModel;
import org.mambaspark.spark.MambaSettings;
import org.mambaspark.spark.ModelCache;
import org.mambaspark.spark.Task;

/**
 * The score job on {@code local-cluster[2,1,1024]}: an in-process master and two workers that
 * launch two executor JVMs (Surefire sets spark.testing=1, spark.test.home and SPARK_LOCAL_IP; see
 * the surefire settings in the parent pom). Each executor loads the model itself, once, and the
 * scores equal the engine's.
 */
class LocalClusterTest {
  @TempDir static Path tmp;
  static SparkSession spark;

  @BeforeAll
  static void start() throws Exception {
    spark = JobTestSupport.localCluster("LocalClusterTest");
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  /** Per executor task: "pid loads" of the JVM it ran in, without loading anything. */
  static final class JvmReport implements MapPartitionsFunction<Long, String> {
    private static final long serialVersionUID = 1L;

    @Override
    public java.util.Iterator<String> call(java.util.Iterator<Long> it) throws Exception {
      Thread.sleep(300); // keep both executors busy, so both report
      return Collections.singletonList(ProcessHandle.current().pid() + " " + ModelCache.loads())
          .iterator();
    }
  }

  @Test
  void eachExecutorJvmLoadsTheModelOnceAndScoresMatch() throws Exception {
    Path model = JobTestSupport.writeModel(tmp.resolve("model"));
    MambaModel engine = new MambaModel(Checkpoint.load(model));
    List<String> lines = new ArrayList<>();
    for (int i = 0; i < 40; i++) {
      lines.add("Line " + i + " of a corpus spread over two executors" + ".".repeat(i));
    }
    Path in = tmp.resolve("corpus.txt");
    Files.write(in, lines, StandardCharsets.UTF_8);
    Path out = tmp.resolve("scores");
    int driverLoadsBefore = ModelCache.loads();
    Map<String, String> m = new HashMap<>();
    m.put(MambaSettings.MODEL.key(), model.toString());
    m.put(MambaSettings.INPUT.key(), in.toString());
    m.put(MambaSettings.OUTPUT.key(), out.toString());
    m.put(MambaSettings.PARTITIONS.key(), "8");
    JobSummary s = MambaJob.run(spark, Task.SCORE, MambaSettings.of(m));
    System.out.println(s);
    assertEquals(40, s.documents());
    assertEquals(0, s.errors());
    assertEquals(2, s.modelLoads(), "each of the two executor JVMs loads the model once");
    assertEquals(driverLoadsBefore, ModelCache.loads(), "the driver loads no model");

    Set<String> reports =
        new HashSet<>(
            spark
                .range(0, 8, 1, 8)
                .as(Encoders.LONG())
                .mapPartitions(new JvmReport(), Encoders.STRING())
                .collectAsList());
    System.out.println("executor JVMs (pid, models loaded): " + reports);
    long driverPid = ProcessHandle.current().pid();
    Set<String> pids = new HashSet<>();
    for (String r : reports) {
      String[] f = r.split(" ", -1);
      pids.add(f[0]);
      assertNotEquals(String.valueOf(driverPid), f[0], "tasks ran in separate JVMs");
      assertEquals("1", f[1], "one model load in JVM " + f[0]);
    }
    assertEquals(2, pids.size());

    double worst = 0;
    for (Row r : spark.read().parquet(out.toString()).collectAsList()) {
      int i = (int) r.getLong(r.fieldIndex("id"));
      worst =
          Math.max(
              worst,
              Math.abs(
                  r.getDouble(r.fieldIndex("loss"))
                      - JobTestSupport.engineLoss(engine, lines.get(i))));
    }
    System.out.printf("local-cluster scores vs engine: largest |Δloss| = %.3g%n", worst);
    assertTrue(worst < 1e-5);
  }
}
