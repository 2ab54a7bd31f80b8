package org.mambaspark.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Callable;
import org.apache.spark.SparkException;
import org.junit.jupiter.api.Test;
import picocli.CommandLine.Command;

/** What a spark-submit main prints when its job fails. */
class JobMainTest {
  /** Spark's message for a stage that lost its executors, as the scheduler words it. */
  static final String ABORTED =
      "Job aborted due to stage failure: ResultStage 6 (collect at ShardedTraining.java:266) has"
          + " failed the maximum allowable number of times: 4. Most recent failure reason:\n"
          + "org.apache.spark.shuffle.MetadataFetchFailedException: Missing an output location\n"
          + "\tat org.apache.spark.MapOutputTracker$.validateStatus(MapOutputTracker.scala:1701)\n"
          + "Driver stacktrace:";

  @Command(name = "failing")
  static final class Failing implements Callable<Integer> {
    final RuntimeException thrown;

    Failing(RuntimeException thrown) {
      this.thrown = thrown;
    }

    @Override
    public Integer call() {
      throw thrown;
    }
  }

  /** Exit code and standard error of a main whose job throws ex. */
  static String[] run(RuntimeException ex) {
    PrintStream old = System.err;
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    try {
      System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
      int code = JobMain.execute(new Failing(ex));
      return new String[] {Integer.toString(code), err.toString(StandardCharsets.UTF_8)};
    } finally {
      System.setErr(old);
    }
  }

  @Test
  void anAbortedSparkJobIsOneLineWithSparksReason() {
    // Spark's action throws its checked SparkException through Java code as the cause of an
    // unchecked one (and directly where the job is run from Scala)
    for (RuntimeException ex :
        new RuntimeException[] {
          new RuntimeException(new SparkException(ABORTED)),
          new IllegalStateException("x", null) // control: a user error keeps its own message
        }) {
      String[] r = run(ex);
      System.out.println("job failure: " + r[1].strip());
      assertEquals("1", r[0]);
      assertTrue(r[1].startsWith("error: "), r[1]);
      assertEquals(1, r[1].strip().lines().count(), r[1]);
      assertFalse(r[1].contains("\tat "), "stack trace printed: " + r[1]);
    }
    String line = JobMain.sparkJobFailure(new RuntimeException(new SparkException(ABORTED)));
    assertTrue(line.contains("ResultStage 6") && line.contains("code 52"), line);
    assertTrue(
        line.contains("reason: org.apache.spark.shuffle.MetadataFetchFailedException"), line);
    assertFalse(line.contains("MapOutputTracker"), line);
  }

  @Test
  void aBugKeepsItsStackTrace() {
    assertNull(JobMain.sparkJobFailure(new NullPointerException()));
    String[] r = run(new NullPointerException());
    assertEquals("1", r[0]);
    assertTrue(r[1].contains("NullPointerException") && r[1].contains("\tat "), r[1]);
  }
}
