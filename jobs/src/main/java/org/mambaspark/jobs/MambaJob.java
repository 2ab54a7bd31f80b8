package org.mambaspark.jobs;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.struct;
import static org.apache.spark.sql.functions.to_json;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.AnalysisException;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.DataFrameWriter;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.mambaspark.spark.InputFormats;
import org.mambaspark.spark.MambaDatasets;
import org.mambaspark.spark.MambaMetrics;
import org.mambaspark.spark.MambaSettings;
import org.mambaspark.spark.ModelFiles;
import org.mambaspark.spark.Task;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.collection.JavaConverters;

/**
 * The score, embed and generate jobs: read a corpus, run every partition through the engine ({@link
 * MambaDatasets}), write a table, report. Thin on purpose: the engine never sees a Dataset, and
 * this class never sees a tensor.
 */
public final class MambaJob {
  private static final Logger LOG = LoggerFactory.getLogger(MambaJob.class);

  private MambaJob() {}

  /**
   * Runs a job from its flags: in the active SparkSession (spark-submit, tests), or in a local one
   * this call creates and stops (bin/mamba, with {@code defaultMaster} unless --master is given).
   */
  public static JobSummary run(
      Task task, JobOptions opts, Map<String, String> taskSettings, String defaultMaster) {
    SparkSessions session =
        SparkSessions.open(
            "mamba " + task.label,
            SparkSessions.master(opts.master, defaultMaster),
            opts.sparkConf);
    SparkSession spark = session.spark;
    try {
      Map<String, String> conf = new LinkedHashMap<>();
      for (Map.Entry<String, String> e :
          JavaConverters.mapAsJavaMap(spark.conf().getAll()).entrySet()) {
        if (e.getKey().startsWith(MambaSettings.PREFIX)) {
          conf.put(e.getKey(), e.getValue());
        }
      }
      conf.putAll(opts.settings);
      conf.putAll(taskSettings);
      JobSummary summary = run(spark, task, MambaSettings.of(conf));
      System.out.println(summary);
      if (opts.show > 0) {
        show(spark, MambaSettings.of(conf), opts.show);
      }
      return summary;
    } catch (Exception e) { // Scala code throws checked exceptions (AnalysisException) unchecked
      throw userError(e);
    } finally {
      session.close();
    }
  }

  /**
   * Names the application {@code name} unless the user named it: spark-submit's {@code --name} and
   * {@code --conf spark.app.name} arrive as the system property spark.app.name, which a builder's
   * appName would override. spark-submit without --name sets the main class's name, which is
   * replaced.
   */
  static void defaultAppName(SparkSession.Builder b, String name) {
    String given = new SparkConf().get("spark.app.name", "");
    if (given.isEmpty() || given.startsWith(MambaJob.class.getPackageName() + ".")) {
      b.appName(name);
    }
  }

  /** Runs a job with settings already gathered. */
  public static JobSummary run(SparkSession spark, Task task, MambaSettings s) {
    if (s.input.isEmpty() || s.output.isEmpty()) {
      throw new IllegalArgumentException(
          "--input and --output are required (or "
              + MambaSettings.INPUT.key()
              + " / "
              + MambaSettings.OUTPUT.key()
              + ")");
    }
    SparkContext sc = spark.sparkContext();
    // First the model, so that a wrong path fails before anything is read.
    ModelFiles.Info model = ModelFiles.inspect(s.requireModel(), sc.hadoopConfiguration());
    String group = "mamba-" + task.label + "-" + UUID.randomUUID();
    String what = "mamba " + task.label + ": " + s.input + " → " + s.output;
    sc.setJobGroup(group, what + " (reading)", false);
    Dataset<Row> in = read(spark, s);
    if (s.partitions > 0) {
      in = in.repartition(s.partitions);
    }
    MambaSettings settings = s;
    if (!s.split.equals("none")) {
      if (task != Task.SCORE) {
        throw new IllegalArgumentException("--split is for score only");
      }
      in = SentenceSplit.apply(in, s);
      settings = s.with(MambaSettings.TEXT_COL, SentenceSplit.SENTENCE);
    }
    MambaMetrics metrics = MambaMetrics.register(sc, task);
    Dataset<Row> out = MambaDatasets.apply(in, task, settings, null, metrics, model);
    LOG.info(
        "{}: model {} ({}), batch {} documents / {} positions, pieces of {} tokens",
        what,
        s.model,
        model.config(),
        s.batchSize,
        s.batchTokens,
        s.pieceLength);
    sc.setJobGroup(group, what, false);
    long t0 = System.nanoTime();
    Progress progress = Progress.start(sc, group, task, metrics, s.progressInterval);
    try {
      write(out, s);
    } finally {
      progress.stop();
      sc.clearJobGroup();
    }
    return JobSummary.of(task, s.output, metrics, (System.nanoTime() - t0) / 1e9);
  }

  /**
   * The input table. Text: one document a line, with {@code id} = the line's position (0, 1, ... in
   * the order Spark reads the files; for one file, its line number) and the text's bytes kept as
   * stored, so invalid UTF-8 is caught per row, not silently replaced. JSON lines and Parquet:
   * their columns as they are.
   */
  static Dataset<Row> read(SparkSession spark, MambaSettings s) {
    Configuration hadoop = spark.sparkContext().hadoopConfiguration();
    switch (InputFormats.resolve(s.inputFormat, s.input, hadoop)) {
      case "text":
        {
          JavaRDD<Row> lines =
              spark
                  .read()
                  .text(s.input)
                  .select(col("value").cast(DataTypes.BinaryType))
                  .javaRDD()
                  .zipWithIndex()
                  .map(t -> RowFactory.create(t._2(), t._1().get(0)));
          StructType schema =
              new StructType().add("id", DataTypes.LongType).add("__raw", DataTypes.BinaryType);
          return spark
              .createDataFrame(lines, schema)
              .select(col("id"), col("__raw").cast(DataTypes.StringType).as(s.textCol));
        }
      case "json":
        return spark.read().json(s.input);
      default:
        return spark.read().parquet(s.input);
    }
  }

  static void write(Dataset<Row> out, MambaSettings s) {
    DataFrameWriter<Row> w =
        out.write().mode(s.overwrite ? SaveMode.Overwrite : SaveMode.ErrorIfExists);
    if (s.outputFormat.equals("json")) {
      w.option("ignoreNullFields", "false").json(s.output); // every row has every column
    } else {
      w.parquet(s.output);
    }
  }

  /** Prints the first rows of the output as JSON lines. */
  static void show(SparkSession spark, MambaSettings s, int n) {
    Dataset<Row> df =
        s.outputFormat.equals("json")
            ? spark.read().json(s.output)
            : spark.read().parquet(s.output);
    List<Column> cols = new ArrayList<>();
    for (String c : df.columns()) {
      if (!c.equals("embedding") && !c.equals("logprobs")) { // long arrays do not print well
        cols.add(df.col(c));
      }
    }
    Column json = to_json(struct(cols.toArray(new Column[0])), Map.of("ignoreNullFields", "false"));
    for (Row r : df.select(json).limit(n).collectAsList()) {
      System.out.println(r.getString(0));
    }
  }

  /**
   * Spark reports a user's mistakes (a missing input, an existing output) as AnalysisException,
   * which Java sees as unchecked here: turned into IllegalArgumentException, one line for the CLI.
   */
  static RuntimeException userError(Exception e) {
    Throwable t = e;
    while (t != null) {
      if (t instanceof AnalysisException a) {
        String m = a.getSimpleMessage();
        if (m.contains("already exists")) {
          m += " (pass --overwrite to replace it)";
        }
        return new IllegalArgumentException(m, e);
      }
      t = t.getCause();
    }
    return e instanceof RuntimeException r ? r : new RuntimeException(e);
  }
}
