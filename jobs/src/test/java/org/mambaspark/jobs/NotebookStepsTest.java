package org.mambaspark.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.johnsnowlabs.nlp.DocumentAssembler;
import com.johnsnowlabs.nlp.annotators.sbd.pragmatic.SentenceDetector;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambaspark.spark.MambaScoreUdf;
import org.mambaspark.spark.MambaSettings;
import org.mambaspark.spark.MambaSqlExtensions;
import org.mambaspark.spark.MambaTransformer;
import org.mambaspark.spark.Task;

/**
 * deploy/notebooks/mamba-pyspark.ipynb's steps as the Java calls PySpark makes, on the model the
 * notebook uses (models/pycode-bytes): a session with the SQL extension and spark.mamba.model, the
 * score UDF registered by class name (registerJavaFunction), the SQL functions, the ML stage, the
 * Spark NLP pipeline ending in the ML stage, then the UDF on its sentences. Each document's loss is
 * the same through the UDF, SQL, the ML stage and the score job (reading the documents from a
 * folder of extension-less JSON lines), within the bound of docs/notebooks-and-airflow.md.
 */
class NotebookStepsTest {
  /**
   * Relative: rounding, as a short document alone takes other matmul kernels than a batch, and the
   * Vector API's lane sums may add in another order before and after C2 compiles them (mamba-udf's
   * BatchInvarianceTest).
   */
  static final double BOUND = 4e-6;

  @TempDir static Path tmp;
  static SparkSession spark;
  static final String MODEL = Path.of("..", "models", "pycode-bytes").toAbsolutePath().toString();

  static final String[] TEXTS = {
    "A state space model reads a sequence.",
    "Mamba selects what to keep.",
    "def add(a, b):\n    return a + b\n",
    "First sentence here. And a second one! A third?",
  };

  @BeforeAll
  static void start() {
    spark =
        SparkSession.builder()
            .master("local[2]")
            .appName("mamba-notebook")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.sql.extensions", MambaSqlExtensions.class.getName())
            .config("spark.mamba.model", MODEL)
            .getOrCreate();
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  static Dataset<Row> docs() {
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < TEXTS.length; i++) {
      rows.add(RowFactory.create((long) i + 1, TEXTS[i]));
    }
    return spark.createDataFrame(
        rows, new StructType().add("id", DataTypes.LongType).add("text", DataTypes.StringType));
  }

  static Map<Long, Double> losses(Dataset<Row> df, String col) {
    Map<Long, Double> m = new HashMap<>();
    for (Row r : df.select("id", col).collectAsList()) {
      m.put(r.getLong(0), r.getDouble(1));
    }
    return m;
  }

  static double compare(Map<Long, Double> want, Map<Long, Double> got, String what) {
    assertEquals(want.keySet(), got.keySet(), what);
    double worst = 0;
    for (Map.Entry<Long, Double> e : want.entrySet()) {
      double a = e.getValue(), b = got.get(e.getKey());
      worst = Math.max(worst, Math.abs(a - b) / Math.max(1, Math.abs(a)));
      assertEquals(a, b, BOUND * Math.max(1, Math.abs(a)), what + " id " + e.getKey());
    }
    return worst;
  }

  @Test
  void theNotebooksStepsGiveOneLossPerDocumentWhicheverPath() throws Exception {
    // registerJavaFunction("mamba_score_udf", "org.mambaspark.spark.MambaScoreUdf", "struct<...>")
    spark
        .udf()
        .registerJava(
            "mamba_score_udf",
            "org.mambaspark.spark.MambaScoreUdf",
            DataType.fromDDL(MambaScoreUdf.RETURN_TYPE_DDL));
    Dataset<Row> docs = docs();
    Map<Long, Double> byUdf =
        losses(docs.selectExpr("id", "mamba_score_udf(text).loss AS loss"), "loss");
    docs.createOrReplaceTempView("docs");
    Dataset<Row> sql =
        spark.sql(
            "SELECT id, mamba_score(text).loss AS loss, mamba_generate(text, 16) AS more FROM docs");
    for (Row r : sql.collectAsList()) {
      assertTrue(r.getString(2).length() <= 16, "at most 16 new tokens (bytes)");
    }
    Map<Long, Double> bySql = losses(sql, "loss");
    MambaTransformer stage =
        new MambaTransformer()
            .setModelPath(MODEL)
            .setTask("score")
            .setInputCol("text")
            .setOutputCol("ml_loss");
    Map<Long, Double> byMl = losses(stage.transform(docs), "ml_loss");

    // the score job, on the documents as a dated folder of JSON lines without extensions
    Path day = tmp.resolve("daily/2026-11-30");
    Files.createDirectories(day);
    List<String> lines = docs.toJSON().collectAsList();
    Files.write(day.resolve("part-00000"), lines.subList(0, 2), StandardCharsets.UTF_8);
    Files.write(day.resolve("part-00001"), lines.subList(2, lines.size()), StandardCharsets.UTF_8);
    Files.writeString(day.resolve("_SUCCESS"), "");
    Path out = tmp.resolve("scores");
    Map<String, String> m = new HashMap<>();
    m.put(MambaSettings.MODEL.key(), MODEL);
    m.put(MambaSettings.INPUT.key(), day.toString());
    m.put(MambaSettings.OUTPUT.key(), out.toString());
    m.put(MambaSettings.BATCH_SIZE.key(), "4");
    MambaJob.run(spark, Task.SCORE, MambaSettings.of(m));
    Map<Long, Double> byJob = losses(spark.read().parquet(out.toString()), "loss");

    double worst =
        Math.max(
            Math.max(compare(byUdf, bySql, "SQL"), compare(byUdf, byMl, "ML stage")),
            compare(byUdf, byJob, "score job"));
    System.out.printf(
        "notebook steps: %d documents; UDF vs SQL, ML stage and score job: largest relative"
            + " difference %.3g%n",
        byUdf.size(), worst);
  }

  @Test
  void theSparkNlpPipelineThenTheUdfOnItsSentences() {
    spark
        .udf()
        .registerJava(
            "mamba_score_udf",
            "org.mambaspark.spark.MambaScoreUdf",
            DataType.fromDDL(MambaScoreUdf.RETURN_TYPE_DDL));
    DocumentAssembler document = new DocumentAssembler();
    document.setInputCol("text");
    document.setOutputCol("document");
    SentenceDetector sentences = new SentenceDetector();
    sentences.setInputCols(new String[] {"document"});
    sentences.setOutputCol("sentence");
    MambaTransformer mamba =
        new MambaTransformer()
            .setModelPath(MODEL)
            .setTask("score")
            .setInputCol("sentence")
            .setOutputCol("mamba");
    Pipeline pipeline = new Pipeline().setStages(new PipelineStage[] {document, sentences, mamba});
    Dataset<Row> docs = docs();
    List<Row> rows =
        pipeline
            .fit(docs)
            .transform(docs)
            .selectExpr(
                "id",
                "sentence_index",
                "sentence_text",
                "mamba",
                "error",
                "mamba_score_udf(sentence_text).loss AS udf")
            .collectAsList();
    int fourth = 0;
    double worst = 0;
    for (Row r : rows) {
      assertNull(r.get(4), "error");
      double ml = r.getDouble(3), udf = r.getDouble(5);
      worst = Math.max(worst, Math.abs(ml - udf) / Math.max(1, Math.abs(ml)));
      assertEquals(ml, udf, BOUND * Math.max(1, Math.abs(ml)), r.getString(2));
      fourth += r.getLong(0) == 4 ? 1 : 0;
    }
    assertEquals(3, fourth, "document 4 has three sentences");
    System.out.printf(
        "Spark NLP pipeline: %d sentences, ML stage vs UDF on the sentence: largest relative"
            + " difference %.3g%n",
        rows.size(), worst);
  }
}
