package org.mambaspark.jobs;

import java.util.Map;
import org.apache.spark.sql.SparkSession;

/**
 * The Spark session a job runs in, shared by the inference jobs and training: the active one
 * (spark-submit after a session was made, notebooks, tests), else one this JVM creates and {@link
 * #close} stops. The master: {@code --master} when given; else spark-submit's ({@code
 * spark.master}, which Spark reads itself); else the command's embedded default (bin/mamba: {@code
 * local[*]}).
 */
final class SparkSessions implements AutoCloseable {
  final SparkSession spark;
  private final boolean owned;

  private SparkSessions(SparkSession spark, boolean owned) {
    this.spark = spark;
    this.owned = owned;
  }

  /** The master to set: the flag, else none under spark-submit, else the embedded default. */
  static String master(String flag, String embeddedDefault) {
    if (flag != null) {
      return flag;
    }
    return System.getProperty("spark.master") != null ? null : embeddedDefault;
  }

  /** Whether a session this call would create runs in this JVM ({@code local...}). */
  static boolean local(String master) {
    String m = master != null ? master : System.getProperty("spark.master", "");
    return m.startsWith("local");
  }

  /**
   * The active session, or a new one with this app name (unless the user named it: {@code --name}
   * / spark.app.name win), master (null: Spark's own setting) and
   * settings; an embedded (local) one binds to the loopback address and prints no progress bars.
   */
  static SparkSessions open(String app, String master, Map<String, String> conf) {
    if (SparkSession.getActiveSession().isDefined()
        && !SparkSession.getActiveSession().get().sparkContext().isStopped()) {
      return new SparkSessions(SparkSession.getActiveSession().get(), false);
    }
    SparkSession.Builder b = SparkSession.builder();
    MambaJob.defaultAppName(b, app);
    if (master != null) {
      b.master(master);
      if (master.startsWith("local")) { // an embedded Spark talks to itself only
        b.config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.showConsoleProgress", "false");
      }
    }
    for (Map.Entry<String, String> e : conf.entrySet()) {
      b.config(e.getKey(), e.getValue());
    }
    return new SparkSessions(b.getOrCreate(), true);
  }

  @Override
  public void close() {
    if (owned) {
      spark.stop();
    }
  }
}
