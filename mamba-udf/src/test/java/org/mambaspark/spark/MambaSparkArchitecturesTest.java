package org.mambaspark.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.Architecture;
import org.mambaspark.model.Generator;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.SamplingParams;
import org.mambaspark.tokenizer.ByteTokenizer;
import org.mambaspark.tokenizer.Tokenizers;

/**
 * The Spark glue is the same for every architecture: in local[*], a Mamba-2 model (two groups) and
 * a Falcon-Mamba model scored, generated and called through SQL and the ML stage, each equal to the
 * engine on the driver.
 */
class MambaSparkArchitecturesTest {
  @TempDir static Path tmp;
  static SparkSession spark;

  @BeforeAll
  static void start() {
    spark =
        SparkSession.builder()
            .master("local[*]")
            .appName("MambaSparkArchitecturesTest")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.sql.extensions", MambaSqlExtensions.class.getName())
            .getOrCreate();
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  static MambaConfig config(Architecture a) {
    return MambaConfig.builder()
        .architecture(a)
        .vocabSize(256)
        .hiddenSize(32)
        .stateSize(8)
        .numLayers(2)
        .headDim(16)
        .nGroups(2)
        .chunkSize(16)
        .build();
  }

  @ParameterizedTest
  @ValueSource(strings = {"mamba2", "falcon-mamba"})
  void scoreGenerateSqlAndTheMlStageEqualTheEngine(String arch) throws Exception {
    MambaConfig c = config(Architecture.ofCliName(arch));
    Path dir = tmp.resolve(arch);
    Files.createDirectories(dir);
    Checkpoint.save(Initialization.initialize(c, 3), dir);
    Tokenizers.writeByteTokenizerMarker(dir);
    MambaModel model = new MambaModel(Checkpoint.load(dir));
    MambaSettings settings =
        MambaSettings.of("model", dir.toString(), "maxNewTokens", "5", "stopIds", "-1");
    Dataset<Row> texts = texts();

    Map<Long, Row> scored =
        MambaSparkTest.byId(MambaDatasets.apply(texts, Task.SCORE, settings, null, null));
    Map<Long, Row> generated =
        MambaSparkTest.byId(MambaDatasets.apply(texts, Task.GENERATE, settings, null, null));
    double worst = 0;
    for (int i = 0; i < MambaSparkTest.TEXTS.length; i++) {
      String text = MambaSparkTest.TEXTS[i];
      int[] ids = ByteTokenizer.INSTANCE.encode(text);
      Row s = scored.get(10L + i);
      assertNull(s.get(s.fieldIndex("error")));
      double want =
          org.mambaspark.model.Scoring.meanNextTokenLoss(
              model, new org.mambaspark.model.Workspace(c), ids, 1, ids.length);
      worst = Math.max(worst, Math.abs(s.getDouble(s.fieldIndex("loss")) - want));
      Row g = generated.get(10L + i);
      assertNull(g.get(g.fieldIndex("error")));
      int[] greedy =
          new Generator(model)
              .generate(ids, new SamplingParams(5, 0f, 0, 1f, 0L, new int[] {-1}), null);
      List<Integer> got = g.getList(g.fieldIndex("generated_ids"));
      assertEquals(Arrays.toString(greedy), got.toString(), "greedy generation of row " + i);
    }
    System.out.printf(
        "[%s] Spark score vs engine: largest |Δloss| %.3g; generation identical%n", arch, worst);
    assertTrue(worst < 1e-5);

    texts.createOrReplaceTempView("docs_" + arch.replace('-', '_'));
    spark.conf().set("spark.mamba.model", dir.toString());
    double sql =
        spark
            .sql(
                "SELECT mamba_score(text).loss FROM docs_"
                    + arch.replace('-', '_')
                    + " WHERE id = 13")
            .first()
            .getDouble(0);
    int[] ids3 = ByteTokenizer.INSTANCE.encode(MambaSparkTest.TEXTS[3]);
    double want3 =
        org.mambaspark.model.Scoring.meanNextTokenLoss(
            model, new org.mambaspark.model.Workspace(c), ids3, 1, ids3.length);
    assertEquals(want3, sql, 1e-5, "SQL mamba_score");

    MambaTransformer stage =
        new MambaTransformer()
            .setModelPath(dir.toString())
            .setTask("score")
            .setInputCol("text")
            .setOutputCol("nll");
    Map<Long, Row> r = MambaSparkTest.byId(stage.transform(texts));
    assertEquals(want3, r.get(13L).getDouble(r.get(13L).fieldIndex("nll")), 1e-5, "ML stage");
  }

  static Dataset<Row> texts() {
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < MambaSparkTest.TEXTS.length; i++) {
      rows.add(org.apache.spark.sql.RowFactory.create(10L + i, MambaSparkTest.TEXTS[i]));
    }
    return spark
        .createDataFrame(
            rows,
            new org.apache.spark.sql.types.StructType()
                .add("id", org.apache.spark.sql.types.DataTypes.LongType)
                .add("text", org.apache.spark.sql.types.DataTypes.StringType))
        .repartition(2);
  }
}
