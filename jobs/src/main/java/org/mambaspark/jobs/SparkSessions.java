package org.mambaspark.jobs;

import java.util.Map;
import org.apache.spark.SparkConf;
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
   * The active session, or a new one ({@link SparkMasters#start}: named {@code app} unless the user
   * named it) with this master (null: Spark's own setting) and settings.
   */
  static SparkSessions open(String app, String master, Map<String, String> conf) {
    if (SparkSession.getActiveSession().isDefined()
        && !SparkSession.getActiveSession().get().sparkContext().isStopped()) {
      return new SparkSessions(SparkSession.getActiveSession().get(), false);
    }
    SparkConf sparkConf = new SparkConf(); // spark-submit's settings arrive as system properties
    if (master != null) {
      sparkConf.setMaster(master);
    }
    for (Map.Entry<String, String> e : conf.entrySet()) {
      sparkConf.set(e.getKey(), e.getValue());
    }
    SparkMasters.prepare(sparkConf);
    return new SparkSessions(SparkMasters.start(sparkConf, app), true);
  }

  @Override
  public void close() {
    if (owned) {
      spark.stop();
    }
  }
}
