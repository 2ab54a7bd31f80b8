package org.mambaspark.spark;

import static org.apache.spark.sql.functions.col;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.johnsnowlabs.nlp.DocumentAssembler;
import com.johnsnowlabs.nlp.annotators.sbd.pragmatic.SentenceDetector;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
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
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.Scoring;
import org.mambaspark.model.Workspace;
import org.mambaspark.tokenizer.ByteTokenizer;

/**
 * The Spark-facing pieces in one local[2] session: the Dataset step for each task and each input
 * kind, bad rows, the SQL functions, the UDF classes as PySpark registers them, the ML stage saved
 * and loaded, and a Spark NLP pipeline ending in the Mamba stage.
 */
class MambaSparkTest {
  @TempDir static Path tmp;
  static SparkSession spark;
  static Path modelDir;
  static MambaModel model;

  static final String[] TEXTS = {
    "The state carries what the model remembers.",
    "A selective scan decides what to keep.",
    "Short.",
    "Mamba reads bytes one at a time and never looks back more than it must, which is why long"
        + " documents cost time linear in their length."
  };

  @BeforeAll
  static void start() throws Exception {
    modelDir = TestModels.write(tmp, "model");
    model = TestModels.load(modelDir);
    spark =
        SparkSession.builder()
            .master("local[2]")
            .appName("MambaSparkTest")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.sql.extensions", MambaSqlExtensions.class.getName())
            .config("spark.mamba.model", modelDir.toString())
            .getOrCreate();
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  static double engineLoss(String text) {
    int[] ids = ByteTokenizer.INSTANCE.encode(text);
    return Scoring.meanNextTokenLoss(model, new Workspace(model.config), ids, 1, ids.length);
  }

  static Dataset<Row> texts() {
    StructType schema =
        new StructType().add("id", DataTypes.LongType).add("text", DataTypes.StringType);
    List<Row> rows =
        Arrays.asList(
            RowFactory.create(10L, TEXTS[0]),
            RowFactory.create(11L, TEXTS[1]),
            RowFactory.create(12L, TEXTS[2]),
            RowFactory.create(13L, TEXTS[3]));
    return spark.createDataFrame(rows, schema).repartition(2);
  }

  static Map<Long, Row> byId(Dataset<Row> df) {
    Map<Long, Row> m = new HashMap<>();
    for (Row r : df.collectAsList()) {
      m.put(r.getLong(r.fieldIndex("id")), r);
    }
    return m;
  }

  static MambaSettings settings(String... kv) {
    String[] all = Arrays.copyOf(kv, kv.length + 2);
    all[kv.length] = "model";
    all[kv.length + 1] = modelDir.toString();
    return MambaSettings.of(all);
  }

  @Test
  void scoresOfTextAndOfIdsEqualTheEngine() {
    Dataset<Row> out =
        MambaDatasets.apply(texts(), Task.SCORE, settings("batchSize", "2"), null, null);
    assertEquals(
        Arrays.asList("id", "text", "loss", "perplexity", "tokens", "error"),
        Arrays.asList(out.columns()));
    Map<Long, Row> r = byId(out);
    double worst = 0;
    for (int i = 0; i < TEXTS.length; i++) {
      Row row = r.get(10L + i);
      assertNull(row.get(row.fieldIndex("error")));
      double loss = row.getDouble(row.fieldIndex("loss"));
      worst = Math.max(worst, Math.abs(loss - engineLoss(TEXTS[i])));
      assertEquals(Math.exp(loss), row.getDouble(row.fieldIndex("perplexity")), 1e-9);
      assertEquals(
          TEXTS[i].getBytes(StandardCharsets.UTF_8).length, row.getInt(row.fieldIndex("tokens")));
    }
    System.out.printf("Spark score vs engine forward: largest |Δloss| = %.3g%n", worst);
    assertTrue(worst < 1e-5);

    // the same documents as token ids, with logprobs
    List<Row> idRows = new java.util.ArrayList<>();
    for (int i = 0; i < TEXTS.length; i++) {
      List<Integer> l = new java.util.ArrayList<>();
      for (int id : ByteTokenizer.INSTANCE.encode(TEXTS[i])) {
        l.add(id);
      }
      idRows.add(RowFactory.create(10L + i, l));
    }
    Dataset<Row> ids = spark.createDataFrame(idRows, idsSchema());
    Map<Long, Row> r2 =
        byId(MambaDatasets.apply(ids, Task.SCORE, settings("logprobs", "true"), null, null));
    for (int i = 0; i < TEXTS.length; i++) {
      Row row = r2.get(10L + i);
      assertEquals(engineLoss(TEXTS[i]), row.getDouble(row.fieldIndex("loss")), 1e-5);
      assertEquals(
          TEXTS[i].getBytes(StandardCharsets.UTF_8).length - 1,
          row.getList(row.fieldIndex("logprobs")).size());
    }
  }

  static StructType idsSchema() {
    return new StructType()
        .add("id", DataTypes.LongType)
        .add("input_ids", DataTypes.createArrayType(DataTypes.IntegerType));
  }

  @Test
  void badRowsCarryAnErrorAndTheJobCompletes() {
    StructType schema =
        new StructType().add("id", DataTypes.LongType).add("raw", DataTypes.BinaryType);
    List<Row> rows =
        Arrays.asList(
            RowFactory.create(1L, null),
            RowFactory.create(2L, new byte[0]),
            RowFactory.create(3L, new byte[] {'a', 'b', (byte) 0xC3, (byte) 0x28, 'c'}),
            RowFactory.create(4L, "fine text".getBytes(StandardCharsets.UTF_8)),
            RowFactory.create(5L, new byte[] {'x'}));
    Dataset<Row> in =
        spark
            .createDataFrame(rows, schema)
            .withColumn("text", col("raw").cast(DataTypes.StringType))
            .drop("raw");
    Dataset<Row> out = MambaDatasets.apply(in, Task.SCORE, settings(), null, null);
    Map<Long, Row> r = byId(out);
    assertEquals(5, r.size());
    for (Row x : r.values()) {
      System.out.println(x.get(0) + ": " + x.get(x.fieldIndex("error")));
    }
    assertTrue(r.get(1L).getString(r.get(1L).fieldIndex("error")).contains("is null"));
    assertTrue(r.get(2L).getString(r.get(2L).fieldIndex("error")).contains("empty"));
    assertTrue(
        r.get(3L).getString(r.get(3L).fieldIndex("error")).contains("not valid UTF-8 (invalid"));
    assertNull(r.get(4L).get(r.get(4L).fieldIndex("error")));
    assertEquals(engineLoss("fine text"), r.get(4L).getDouble(r.get(4L).fieldIndex("loss")), 1e-5);
    assertTrue(r.get(5L).getString(r.get(5L).fieldIndex("error")).contains("at least 2"));

    List<Row> idRows =
        Arrays.asList(
            RowFactory.create(1L, Arrays.asList(1, 2, 300)),
            RowFactory.create(2L, Arrays.asList(1, null, 3)),
            RowFactory.create(3L, null),
            RowFactory.create(4L, Arrays.asList(1, 2, 3)));
    Map<Long, Row> r2 =
        byId(
            MambaDatasets.apply(
                spark.createDataFrame(idRows, idsSchema()), Task.EMBED, settings(), null, null));
    assertTrue(error(r2.get(1L)).contains("token id 300 at position 2 is outside"));
    assertTrue(error(r2.get(2L)).contains("is null"));
    assertTrue(error(r2.get(3L)).contains("is null"));
    assertNull(error(r2.get(4L)));
    assertEquals(model.config.hiddenSize, r2.get(4L).getList(2).size());
  }

  static String error(Row r) {
    return r.getString(r.fieldIndex("error"));
  }

  @Test
  void missingModelFailsOnTheDriverWithAClearMessage() {
    MambaSettings s = MambaSettings.of("model", tmp.resolve("no-such-model").toString());
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> MambaDatasets.apply(texts(), Task.SCORE, s, null, null));
    System.out.println(e.getMessage());
    assertTrue(e.getMessage().contains("does not exist"));
  }

  @Test
  void embedAndGenerate() {
    Map<Long, Row> e =
        byId(MambaDatasets.apply(texts(), Task.EMBED, settings("pooling", "last"), null, null));
    assertEquals(
        model.config.hiddenSize, e.get(10L).getList(e.get(10L).fieldIndex("embedding")).size());
    Map<Long, Row> g =
        byId(
            MambaDatasets.apply(
                texts(),
                Task.GENERATE,
                settings("maxNewTokens", "6", "stopIds", "-1"),
                null,
                null));
    Row row = g.get(11L);
    assertEquals(6, row.getList(row.fieldIndex("generated_ids")).size());
    assertNotNull(row.getString(row.fieldIndex("generated_text")));
    assertNull(row.get(row.fieldIndex("error")));
  }

  @Test
  void sqlFunctionsFromTheExtension() {
    texts().createOrReplaceTempView("docs");
    List<Row> rows =
        spark
            .sql(
                "SELECT id, mamba_score(text) AS s, mamba_embed(text) AS e,"
                    + " mamba_generate(text, 4) AS g FROM docs ORDER BY id")
            .collectAsList();
    assertEquals(4, rows.size());
    Row s = rows.get(0).getStruct(1);
    assertEquals(engineLoss(TEXTS[0]), s.getDouble(0), 1e-5);
    assertEquals(model.config.hiddenSize, rows.get(0).getList(2).size());
    assertNotNull(rows.get(0).getString(3));
    double loss =
        spark.sql("SELECT mamba_score(text).loss FROM docs WHERE id = 13").first().getDouble(0);
    assertEquals(engineLoss(TEXTS[3]), loss, 1e-5);
    Row nul = spark.sql("SELECT mamba_score(CAST(NULL AS STRING)).error").first();
    assertEquals("text is null", nul.getString(0));
  }

  @Test
  void udfClassesRegisterAsPySparkDoes() {
    // what spark.udf.registerJavaFunction(name, className, returnType) calls
    spark
        .udf()
        .registerJava(
            "py_score",
            MambaScoreUdf.class.getName(),
            DataType.fromDDL(MambaScoreUdf.RETURN_TYPE_DDL));
    spark
        .udf()
        .registerJava(
            "py_embed",
            MambaEmbedUdf.class.getName(),
            DataType.fromDDL(MambaEmbedUdf.RETURN_TYPE_DDL));
    spark
        .udf()
        .registerJava(
            "py_generate",
            MambaGenerateUdf.class.getName(),
            DataType.fromDDL(MambaGenerateUdf.RETURN_TYPE_DDL));
    texts().createOrReplaceTempView("docs2");
    Row r =
        spark
            .sql(
                "SELECT py_score(text).loss, size(py_embed(text)), length(py_generate(text, 3))"
                    + " FROM docs2 WHERE id = 10")
            .first();
    assertEquals(engineLoss(TEXTS[0]), r.getDouble(0), 1e-5);
    assertEquals(model.config.hiddenSize, r.getInt(1));
    assertTrue(r.getInt(2) <= 3);
  }

  @Test
  void mlStageSavesLoadsAndRuns() throws Exception {
    MambaTransformer t =
        new MambaTransformer()
            .setModelPath(modelDir.toString())
            .setTask("score")
            .setInputCol("text")
            .setOutputCol("nll")
            .setBatchSize(3);
    String path = tmp.resolve("stage").toString();
    t.write().overwrite().save(path);
    MambaTransformer back = MambaTransformer.load(path);
    assertEquals(t.uid(), back.uid());
    assertEquals(modelDir.toString(), back.getModelPath());
    assertEquals(3, back.getBatchSize());
    assertEquals("nll", back.getOutputCol());
    Dataset<Row> out = back.transform(texts());
    assertEquals(back.transformSchema(texts().schema()), out.schema());
    Map<Long, Row> r = byId(out);
    assertEquals(engineLoss(TEXTS[2]), r.get(12L).getDouble(r.get(12L).fieldIndex("nll")), 1e-5);
  }

  @Test
  void sparkNlpPipelineEndsInTheMambaStage() throws Exception {
    DocumentAssembler document = new DocumentAssembler();
    document.setInputCol("text");
    document.setOutputCol("document");
    SentenceDetector sentences = new SentenceDetector();
    sentences.setInputCols(new String[] {"document"});
    sentences.setOutputCol("sentence");
    MambaTransformer mamba =
        new MambaTransformer().setModelPath(modelDir.toString()).setInputCol("sentence");
    Pipeline pipeline = new Pipeline().setStages(new PipelineStage[] {document, sentences, mamba});
    Dataset<Row> in =
        spark.createDataFrame(
            Arrays.asList(
                RowFactory.create(1L, "First sentence here. And a second one! A third?"),
                RowFactory.create(2L, "Only one sentence")),
            new StructType().add("id", DataTypes.LongType).add("text", DataTypes.StringType));
    PipelineModel fitted = pipeline.fit(in);
    String path = tmp.resolve("pipeline").toString();
    fitted.write().overwrite().save(path);
    PipelineModel loaded = PipelineModel.load(path);
    List<Row> rows =
        loaded
            .transform(in)
            .select(
                "id",
                "sentence_index",
                "sentence_begin",
                "sentence_end",
                "sentence_text",
                "loss",
                "error")
            .orderBy("id", "sentence_index")
            .collectAsList();
    rows.forEach(System.out::println);
    assertEquals(4, rows.size());
    assertEquals("And a second one!", rows.get(1).getString(4));
    assertEquals(engineLoss("And a second one!"), rows.get(1).getDouble(5), 1e-5);
    assertEquals(2L, rows.get(3).getLong(0));
    assertNull(rows.get(3).get(6));
  }
}
