package org.mambaspark.spark;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.posexplode_outer;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.IntegralType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.SerializableConfiguration;

/**
 * The one Dataset-level step every entry point shares (jobs, ML stage): checks the model on the
 * driver, picks the input column, and maps each partition through {@link MambaPartitions}. Input
 * columns are kept; the task's columns are appended:
 *
 * <pre>
 *   score     loss double, perplexity double, tokens int, [logprobs array&lt;float&gt;], error string
 *   embed     embedding array&lt;float&gt;, tokens int, error string
 *   generate  generated_text string, generated_ids array&lt;int&gt;, tokens int, error string
 * </pre>
 *
 * A Spark NLP annotation column as input (e.g. {@code sentence}) gives one row per annotation, with
 * {@code <col>_index}, {@code <col>_begin}, {@code <col>_end} and {@code <col>_text} in place of
 * the annotation column.
 */
public final class MambaDatasets {
  /** The hidden column carrying the text's UTF-8 bytes as stored (checked strictly by the task). */
  static final String TEXT_BYTES = "__mamba_text_bytes";

  /** Spark's JSON and CSV readers put an unparsable line here (PERMISSIVE mode). */
  static final String CORRUPT_RECORD = "_corrupt_record";

  private MambaDatasets() {}

  /** How a task reads its input rows and what it adds. */
  public static final class Plan implements Serializable {
    private static final long serialVersionUID = 1L;

    final Task task;
    final boolean ids; //       input is token ids (else text)
    final String inputCol; //   after any explode
    final String annotationCol; // non-null: explode this Spark NLP annotation column first
    final StructType keptSchema; // the input columns kept (after any explode)
    final StructType outputSchema;
    final int corruptIndex; //  index of _corrupt_record in the kept row, or -1

    Plan(
        Task task,
        boolean ids,
        String inputCol,
        String annotationCol,
        StructType keptSchema,
        StructType outputSchema) {
      this.task = task;
      this.ids = ids;
      this.inputCol = inputCol;
      this.annotationCol = annotationCol;
      this.keptSchema = keptSchema;
      this.outputSchema = outputSchema;
      this.corruptIndex =
          Arrays.asList(keptSchema.fieldNames()).contains(CORRUPT_RECORD)
              ? keptSchema.fieldIndex(CORRUPT_RECORD)
              : -1;
    }

    public StructType outputSchema() {
      return outputSchema;
    }

    /** True when the input is token ids, false when text. */
    public boolean readsIds() {
      return ids;
    }
  }

  /**
   * The plan for an input schema (no data read, no model loaded): the ML stage's transformSchema.
   *
   * @param mainCol the name of the task's main output column (loss, embedding, generated_text), or
   *     null for that default
   */
  public static Plan plan(StructType in, Task task, MambaSettings s, String mainCol) {
    List<String> names = Arrays.asList(in.fieldNames());
    boolean ids;
    String inputCol;
    String annotationCol = null;
    StructType kept = in;
    if (names.contains(s.idsCol) && isTokenIds(in.apply(s.idsCol).dataType())) {
      ids = true;
      inputCol = s.idsCol;
    } else if (names.contains(s.textCol)) {
      DataType t = in.apply(s.textCol).dataType();
      ids = false;
      if (t.equals(DataTypes.StringType)) {
        inputCol = s.textCol;
      } else if (isAnnotations(t)) {
        annotationCol = s.textCol;
        inputCol = s.textCol + "_text";
        List<StructField> fs = new ArrayList<>();
        for (StructField f : in.fields()) {
          if (!f.name().equals(annotationCol)) {
            fs.add(f);
          }
        }
        fs.add(DataTypes.createStructField(annotationCol + "_index", DataTypes.IntegerType, true));
        fs.add(DataTypes.createStructField(annotationCol + "_begin", DataTypes.IntegerType, true));
        fs.add(DataTypes.createStructField(annotationCol + "_end", DataTypes.IntegerType, true));
        fs.add(DataTypes.createStructField(inputCol, DataTypes.StringType, true));
        kept = DataTypes.createStructType(fs);
      } else {
        throw new IllegalArgumentException(
            "column '"
                + s.textCol
                + "' must be a string, a Spark NLP annotation column or an array of token ids,"
                + " it is "
                + t.sql());
      }
    } else if (names.contains(s.idsCol)) {
      throw new IllegalArgumentException(
          "column '"
              + s.idsCol
              + "' must be an array of integers (token ids), it is "
              + in.apply(s.idsCol).dataType().sql());
    } else {
      throw new IllegalArgumentException(
          "the input has neither a '"
              + s.textCol
              + "' column (text) nor an '"
              + s.idsCol
              + "' column (token ids); its columns: "
              + names
              + " (choose with "
              + MambaSettings.TEXT_COL.flag()
              + " / "
              + MambaSettings.IDS_COL.flag()
              + ")");
    }
    List<StructField> out = new ArrayList<>(Arrays.asList(kept.fields()));
    for (StructField f : taskFields(task, s, mainCol)) {
      if (Arrays.asList(kept.fieldNames()).contains(f.name())) {
        throw new IllegalArgumentException(
            "the input already has a column '"
                + f.name()
                + "', which the "
                + task.label
                + " task adds: drop or rename it");
      }
      out.add(f);
    }
    return new Plan(task, ids, inputCol, annotationCol, kept, DataTypes.createStructType(out));
  }

  /** The columns a task appends. */
  static List<StructField> taskFields(Task task, MambaSettings s, String mainCol) {
    List<StructField> f = new ArrayList<>();
    switch (task) {
      case SCORE:
        f.add(field(mainCol != null ? mainCol : "loss", DataTypes.DoubleType));
        f.add(field("perplexity", DataTypes.DoubleType));
        f.add(field("tokens", DataTypes.IntegerType));
        if (s.logprobs) {
          f.add(field("logprobs", DataTypes.createArrayType(DataTypes.FloatType, false)));
        }
        break;
      case EMBED:
        f.add(
            field(
                mainCol != null ? mainCol : "embedding",
                DataTypes.createArrayType(DataTypes.FloatType, false)));
        f.add(field("tokens", DataTypes.IntegerType));
        break;
      case GENERATE:
        f.add(field(mainCol != null ? mainCol : "generated_text", DataTypes.StringType));
        f.add(field("generated_ids", DataTypes.createArrayType(DataTypes.IntegerType, false)));
        f.add(field("tokens", DataTypes.IntegerType));
        break;
    }
    f.add(field("error", DataTypes.StringType));
    return f;
  }

  private static StructField field(String name, DataType t) {
    return DataTypes.createStructField(name, t, true);
  }

  static boolean isTokenIds(DataType t) {
    return t instanceof ArrayType a && a.elementType() instanceof IntegralType;
  }

  /** Spark NLP's annotation column: array<struct<annotatorType, begin, end, result, ...>>. */
  static boolean isAnnotations(DataType t) {
    if (!(t instanceof ArrayType a) || !(a.elementType() instanceof StructType st)) {
      return false;
    }
    List<String> n = Arrays.asList(st.fieldNames());
    return n.contains("annotatorType")
        && n.contains("begin")
        && n.contains("end")
        && n.contains("result")
        && st.apply("result").dataType().equals(DataTypes.StringType);
  }

  /**
   * Checks the model on the driver (a wrong path fails here, before any task), then maps every
   * partition through the engine.
   *
   * @param metrics where tasks count documents, tokens and errors (may be null)
   */
  public static Dataset<Row> apply(
      Dataset<Row> in, Task task, MambaSettings s, String mainCol, MambaMetrics metrics) {
    ModelFiles.Info info =
        ModelFiles.inspect(
            s.requireModel(), in.sparkSession().sparkContext().hadoopConfiguration());
    return apply(in, task, s, mainCol, metrics, info);
  }

  /** As {@link #apply(Dataset, Task, MambaSettings, String, MambaMetrics)}, the model inspected. */
  public static Dataset<Row> apply(
      Dataset<Row> in,
      Task task,
      MambaSettings s,
      String mainCol,
      MambaMetrics metrics,
      ModelFiles.Info info) {
    SparkSession spark = in.sparkSession();
    Configuration hadoop = spark.sparkContext().hadoopConfiguration();
    Plan plan = plan(in.schema(), task, s, mainCol);
    if (!plan.ids && info.tokenizer().isEmpty()) {
      throw new IllegalArgumentException(
          "model "
              + s.model
              + " has no tokenizer (tokenizer.json, or a byte-level tokenizer_config.json): give"
              + " token ids in a column '"
              + s.idsCol
              + "' instead of text");
    }
    Dataset<Row> df = in;
    if (plan.annotationCol != null) {
      String a = plan.annotationCol;
      List<Column> cols = new ArrayList<>();
      for (String f : in.columns()) {
        if (!f.equals(a)) {
          cols.add(in.col(f));
        }
      }
      cols.add(posexplode_outer(in.col(a)).as(new String[] {"__mamba_pos", "__mamba_ann"}));
      df = in.select(cols.toArray(new Column[0]));
      df =
          df.withColumn(a + "_index", col("__mamba_pos"))
              .withColumn(a + "_begin", col("__mamba_ann.begin"))
              .withColumn(a + "_end", col("__mamba_ann.end"))
              .withColumn(plan.inputCol, col("__mamba_ann.result"))
              .drop("__mamba_pos", "__mamba_ann");
    }
    if (!plan.ids) { // the bytes as stored: Spark does not validate UTF-8, the task does
      df = df.withColumn(TEXT_BYTES, df.col(plan.inputCol).cast(DataTypes.BinaryType));
    }
    Broadcast<SerializableConfiguration> conf =
        JavaSparkContext.fromSparkContext(spark.sparkContext())
            .broadcast(new SerializableConfiguration(hadoop));
    MambaPartitions fn = new MambaPartitions(plan, s, metrics, conf);
    return df.mapPartitions(fn, Encoders.row(plan.outputSchema));
  }
}
