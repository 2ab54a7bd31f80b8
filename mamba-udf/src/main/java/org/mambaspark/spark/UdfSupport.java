package org.mambaspark.spark;

import java.io.Serializable;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.util.SerializableConfiguration;
import org.mambaspark.batch.Doc;
import org.mambaspark.batch.DocumentRunner;
import scala.collection.JavaConverters;

/**
 * What the row-at-a-time functions (UDF1/UDF2 classes, SQL functions) share: the settings and
 * Hadoop configuration captured on the driver where the function is created (so that {@code
 * spark.conf.set("spark.mamba.model", ...)} in a notebook applies), and a {@link DocumentRunner}
 * per task thread on the executors. They run one row per call, without batching: for large tables
 * the jobs and the ML stage are faster.
 */
final class UdfSupport implements Serializable {
  private static final long serialVersionUID = 1L;

  final MambaSettings settings;
  private final SerializableConfiguration conf;
  private transient ThreadLocal<DocumentRunner> runners;
  private transient ModelCache.Loaded model;

  UdfSupport(MambaSettings settings, SerializableConfiguration conf) {
    this.settings = settings;
    this.conf = conf;
  }

  /** The settings of the active session, its model checked now (on the driver). */
  static UdfSupport ofActiveSession() {
    SparkSession spark =
        SparkSession.getActiveSession()
            .getOrElse(
                () ->
                    SparkSession.getDefaultSession()
                        .getOrElse(
                            () -> {
                              throw new IllegalStateException(
                                  "no active SparkSession: create one before the Mamba functions");
                            }));
    Map<String, String> all = JavaConverters.mapAsJavaMap(spark.conf().getAll());
    MambaSettings s = MambaSettings.of(all);
    ModelFiles.inspect(s.requireModel(), spark.sparkContext().hadoopConfiguration());
    return new UdfSupport(
        s, new SerializableConfiguration(spark.sparkContext().hadoopConfiguration()));
  }

  synchronized ModelCache.Loaded model() {
    if (model == null) {
      model = ModelCache.get(settings.model, conf.value(), settings.threads, settings.weightsDtype);
    }
    return model;
  }

  synchronized DocumentRunner runner() {
    if (runners == null) {
      runners = new ThreadLocal<>();
    }
    DocumentRunner r = runners.get();
    if (r == null) {
      r = new DocumentRunner(model().runnerForTask(), settings.runnerOptions());
      runners.set(r);
    }
    return r;
  }

  /** The document of a text (its error set when it has none). */
  Doc doc(String text) {
    if (text == null) {
      return Doc.failed("text is null");
    }
    ModelCache.Loaded m = model();
    if (m.tokenizer == null) {
      return Doc.failed("the model has no tokenizer: the functions take text");
    }
    try {
      return new Doc(m.tokenizer.encode(text));
    } catch (RuntimeException e) {
      return Doc.failed("cannot tokenize: " + DocumentRunner.message(e));
    }
  }

  /** Runs one document through the task. */
  Doc run(Task task, String text) {
    Doc d = doc(text);
    List<Doc> one = List.of(d);
    DocumentRunner r = runner();
    switch (task) {
      case SCORE:
        r.score(one);
        break;
      case EMBED:
        r.embed(one);
        break;
      case GENERATE:
        r.generate(one);
        break;
    }
    return d;
  }
}
