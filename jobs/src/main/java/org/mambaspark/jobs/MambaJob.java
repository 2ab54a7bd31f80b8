package org.mambaspark.jobs;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.struct;
import static org.apache.spark.sql.functions.to_json;

import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.deploy.SparkHadoopUtil;
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
import scala.Tuple2;

/**
 * The score, embed and generate jobs: read a corpus, run every partition through the engine ({@link
 * MambaDatasets}), write a table, report. Thin on purpose: the engine never sees a Dataset, and
 * this class never sees a tensor.
 */
public final class MambaJob {
  private static final Logger LOG = LoggerFactory.getLogger(MambaJob.class);

  private MambaJob() {}

  /**
   * Runs a job from its flags: in the active SparkSession (tests, notebooks), or in one this call
   * creates and stops (spark-submit, with its master; bin/mamba, with {@code defaultMaster} unless
   * --master is given). Everything a user can get wrong is checked before Spark starts: the master,
   * the model (every tensor against config.json), the output (absent, or --overwrite; writable).
   */
  public static JobSummary run(
      Task task, JobOptions opts, Map<String, String> taskSettings, String defaultMaster) {
    SparkSession active =
        SparkSession.getActiveSession().isDefined() ? SparkSession.getActiveSession().get() : null;
    if (active != null && active.sparkContext().isStopped()) {
      active = null; // an earlier job's session in this JVM
    }
    SparkConf sparkConf;
    if (active != null) {
      sparkConf = active.sparkContext().getConf();
    } else {
      String master = opts.masterOr(defaultMaster);
      if (master != null) {
        SparkMasters.check(master);
      }
      sparkConf = new SparkConf(); // spark-submit's settings arrive as system properties
      if (master != null) {
        sparkConf.setMaster(master);
      }
      for (Map.Entry<String, String> e : opts.sparkConf.entrySet()) {
        sparkConf.set(e.getKey(), e.getValue());
      }
      SparkMasters.prepare(sparkConf);
    }
    Map<String, String> conf = new LinkedHashMap<>();
    for (Tuple2<String, String> e : sparkConf.getAll()) {
      if (e._1().startsWith(MambaSettings.PREFIX)) {
        conf.put(e._1(), e._2());
      }
    }
    conf.putAll(opts.settings);
    conf.putAll(taskSettings);
    Configuration hadoop =
        active != null
            ? active.sparkContext().hadoopConfiguration()
            : SparkHadoopUtil.get().newConfiguration(sparkConf);
    Prepared job = prepare(task, MambaSettings.of(conf), hadoop);
    SparkSession spark = null;
    try {
      spark = active != null ? active : SparkMasters.start(sparkConf, "mamba " + task.label);
      JobSummary summary = run(spark, job);
      System.out.println(summary);
      if (opts.show > 0) {
        show(spark, job.settings, opts.show);
      }
      return summary;
    } catch (Exception e) { // Scala code throws checked exceptions (AnalysisException) unchecked
      throw userError(e);
    } finally {
      job.output.abort();
      if (active == null && spark != null) {
        spark.stop();
        SparkSession.clearActiveSession();
        SparkSession.clearDefaultSession();
      }
    }
  }

  /** Runs a job with settings already gathered, in a running SparkSession. */
  public static JobSummary run(SparkSession spark, Task task, MambaSettings s) {
    Prepared job = prepare(task, s, spark.sparkContext().hadoopConfiguration());
    try {
      return run(spark, job);
    } finally {
      job.output.abort();
    }
  }

  /** A job whose paths are qualified and whose model and output passed their checks. */
  private record Prepared(
      Task task, MambaSettings settings, ModelFiles.Info model, Output output) {}

  /**
   * The driver's checks, in the order that loses nothing: required paths given; every path made
   * absolute on the driver's file system (a relative path means the driver's working directory,
   * which executors do not share); the model validated; the output absent (or --overwrite) and its
   * directory writable. Only then is a staging directory for the output made.
   */
  private static Prepared prepare(Task task, MambaSettings given, Configuration hadoop) {
    if (given.input.isEmpty() || given.output.isEmpty()) {
      throw new IllegalArgumentException(
          "--input and --output are required (or "
              + MambaSettings.INPUT.key()
              + " / "
              + MambaSettings.OUTPUT.key()
              + ")");
    }
    if (!given.split.equals("none") && task != Task.SCORE) {
      throw new IllegalArgumentException("--split is for score only");
    }
    MambaSettings s =
        given
            .with(MambaSettings.MODEL, qualify(given.requireModel(), hadoop))
            .with(MambaSettings.INPUT, qualify(given.input, hadoop))
            .with(MambaSettings.OUTPUT, qualify(given.output, hadoop));
    ModelFiles.Info model = ModelFiles.inspect(s.model, hadoop);
    Output output = Output.prepare(s.output, s.overwrite, hadoop);
    return new Prepared(task, s, model, output);
  }

  /** A path made absolute on its file system (the driver's default one when it has no scheme). */
  static String qualify(String path, Configuration hadoop) {
    Path p = new Path(path);
    try {
      return p.getFileSystem(hadoop).makeQualified(p).toString();
    } catch (IOException e) {
      throw new IllegalArgumentException("path " + path + ": " + e.getMessage(), e);
    }
  }

  private static JobSummary run(SparkSession spark, Prepared job) {
    MambaSettings s = job.settings;
    Task task = job.task;
    SparkContext sc = spark.sparkContext();
    SparkMasters.warnWithoutVectorApi(sc.getConf());
    String group = "mamba-" + task.label + "-" + UUID.randomUUID();
    String what = "mamba " + task.label + ": " + s.input + " → " + s.output;
    sc.setJobGroup(group + "-read", what + " (reading)", false);
    Dataset<Row> in = read(spark, s);
    if (s.partitions > 0) {
      in = in.repartition(s.partitions);
    }
    MambaSettings settings = s;
    if (!s.split.equals("none")) {
      in = SentenceSplit.apply(in, s);
      settings = s.with(MambaSettings.TEXT_COL, SentenceSplit.SENTENCE);
    }
    MambaMetrics metrics = MambaMetrics.register(sc, task);
    Dataset<Row> out = MambaDatasets.apply(in, task, settings, null, metrics, job.model);
    LOG.info(
        "{}: model {} ({}), batch {} documents / {} positions, pieces of {} tokens",
        what,
        s.model,
        job.model.config(),
        s.batchSize,
        s.batchTokens,
        s.pieceLength);
    sc.setJobGroup(group, what, false);
    long t0 = System.nanoTime();
    Progress progress = Progress.start(sc, group, task, metrics, s.progressInterval);
    try {
      write(out, s, job.output.staging());
      job.output.commit();
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

  /** Writes the table to {@code dir}, the output's staging directory (this job's own). */
  static void write(Dataset<Row> out, MambaSettings s, String dir) {
    DataFrameWriter<Row> w = out.write().mode(SaveMode.Overwrite);
    if (s.outputFormat.equals("json")) {
      w.option("ignoreNullFields", "false").json(dir); // every row has every column
    } else {
      w.parquet(dir);
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
      if (t instanceof OutOfMemoryError || String.valueOf(t.getMessage()).contains("Java heap")) {
        return new IllegalStateException(SparkMasters.outOfMemory(), e);
      }
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
