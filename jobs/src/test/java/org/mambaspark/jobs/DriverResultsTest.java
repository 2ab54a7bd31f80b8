package org.mambaspark.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.apache.spark.SparkJobInfo;
import org.apache.spark.SparkStageInfo;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * What the training job expects of Spark's treeAggregate: how many partition results reach the
 * driver (checked against Spark's own jobs), and that too many for spark.driver.maxResultSize fail
 * before training with the setting named.
 */
class DriverResultsTest {
  static SparkSession spark;

  @BeforeAll
  static void start() {
    spark =
        SparkSession.builder()
            .master("local[2]")
            .appName("DriverResultsTest")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            .getOrCreate();
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  @Test
  void resultsAtTheDriverAreTheFinalStagesTasksOfSparksTreeAggregate() throws Exception {
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    StringBuilder seen = new StringBuilder();
    for (int p = 1; p <= 12; p++) {
      String group = "tree-" + p;
      jsc.setJobGroup(group, "treeAggregate over " + p + " partitions", false);
      List<Integer> xs = new ArrayList<>();
      for (int i = 0; i < 3 * p; i++) {
        xs.add(i);
      }
      int sum = jsc.parallelize(xs, p).treeAggregate(0, Integer::sum, Integer::sum, 2);
      assertEquals(3 * p * (3 * p - 1) / 2, sum);
      int job = -1;
      for (int id : jsc.statusTracker().getJobIdsForGroup(group)) {
        job = Math.max(job, id); // the last job of the group is the final fold
      }
      SparkJobInfo info = null;
      SparkStageInfo result = null;
      long deadline = System.nanoTime() + 10_000_000_000L;
      while (result == null && System.nanoTime() < deadline) {
        info = jsc.statusTracker().getJobInfo(job);
        if (info != null) {
          int stage = -1;
          for (int id : info.stageIds()) {
            stage = Math.max(stage, id); // the result stage is created after its parents
          }
          result = jsc.statusTracker().getStageInfo(stage);
        }
        if (result == null) {
          Thread.sleep(20);
        }
      }
      assertTrue(result != null, "no stage info for the treeAggregate of " + p);
      seen.append(String.format(" P=%d:%d", p, result.numTasks()));
      assertEquals(result.numTasks(), TrainJob.resultsAtDriver(p, 2), "partitions " + p);
    }
    jsc.clearJobGroup();
    System.out.println("results at the driver (Spark's final stage tasks):" + seen);
  }

  @Test
  void tooManyResultsForTheDriverFailBeforeTraining() {
    // 2 partitions of 600 KB results (+1 MB allowance each) against 1 MB: fails, naming the setting
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> TrainJob.checkDriverResults("1m", 600_000, 2));
    System.out.println("driver results: " + e.getMessage());
    assertTrue(e.getMessage().contains("spark.driver.maxResultSize"), e.getMessage());
    // mamba-130m's 516 MB gradients: three partitions do not fit Spark's default 1g, two do
    long gradient = 4L * 129_135_360;
    assertThrows(
        IllegalArgumentException.class, () -> TrainJob.checkDriverResults("1g", gradient, 3));
    TrainJob.checkDriverResults("1g", gradient, 2);
    TrainJob.checkDriverResults("0", gradient, 64); // 0: no limit
    TrainJob.checkDriverResults("4g", gradient, 6); // six partitions: one tree level, 2 results
  }
}
