package org.mambaspark.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.MambaModel;
import org.mambaspark.spark.MambaSettings;
import org.mambaspark.spark.Task;

/**
 * The score, embed and generate jobs in one local[2] session: each input format (text, JSON lines
 * with text or ids, Parquet) and output format (Parquet, JSON lines), ids kept, scores equal to the
 * engine's forward, bad rows, a missing model, Spark NLP's sentence split, and HDFS through
 * MiniDFSCluster.
 */
class JobsTest {
  @TempDir static Path tmp;
  static SparkSession spark;
  static Path model;
  static MambaModel engine;

  static final List<String> LINES =
      List.of(
          "Selective state spaces keep what matters.",
          "The scan runs forward in time.",
          "ok",
          "A longer line of text, so that the batches hold documents of different lengths and"
              + " the padding has something to pad.");

  @BeforeAll
  static void start() throws Exception {
    model = JobTestSupport.writeModel(tmp.resolve("model"));
    engine = new MambaModel(Checkpoint.load(model));
    spark =
        SparkSession.builder()
            .master("local[2]")
            .appName("JobsTest")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .getOrCreate();
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  static JobSummary run(Task task, String... kv) {
    Map<String, String> m = new LinkedHashMap<>();
    m.put(MambaSettings.MODEL.key(), model.toString());
    m.put(MambaSettings.PROGRESS_INTERVAL.key(), "1");
    for (int i = 0; i < kv.length; i += 2) {
      m.put(MambaSettings.PREFIX + kv[i], kv[i + 1]);
    }
    return MambaJob.run(spark, task, MambaSettings.of(m));
  }

  static Map<Long, Row> parquetById(Path dir) {
    Map<Long, Row> r = new HashMap<>();
    for (Row row : spark.read().parquet(dir.toString()).collectAsList()) {
      r.put(((Number) row.get(row.fieldIndex("id"))).longValue(), row);
    }
    return r;
  }

  @Test
  void textLinesToParquetKeepLineNumbersAndEqualTheEngine() throws Exception {
    Path in = tmp.resolve("lines.txt");
    Files.write(in, LINES, StandardCharsets.UTF_8);
    Path out = tmp.resolve("out-text");
    JobSummary s =
        run(Task.SCORE, "input", in.toString(), "output", out.toString(), "batchSize", "2");
    System.out.println(s);
    assertEquals(LINES.size(), s.documents());
    Map<Long, Row> r = parquetById(out);
    assertEquals(LINES.size(), r.size());
    double worst = 0;
    for (int i = 0; i < LINES.size(); i++) {
      Row row = r.get((long) i);
      assertEquals(LINES.get(i), row.getString(row.fieldIndex("text")));
      assertNull(row.get(row.fieldIndex("error")));
      worst =
          Math.max(
              worst,
              Math.abs(
                  row.getDouble(row.fieldIndex("loss"))
                      - JobTestSupport.engineLoss(engine, LINES.get(i))));
    }
    System.out.printf("score job vs engine forward: largest |Δloss| = %.3g%n", worst);
    assertTrue(worst < 1e-5);
  }

  @Test
  void invalidUtf8InATextFileIsAnErrorOnItsLine() throws Exception {
    Path in = tmp.resolve("bad-utf8.txt");
    Files.write(
        in,
        concat(
            "good line\n".getBytes(StandardCharsets.UTF_8),
            new byte[] {'b', 'a', 'd', ' ', (byte) 0xC3, (byte) 0x28, '\n'},
            "another good line\n".getBytes(StandardCharsets.UTF_8)));
    Path out = tmp.resolve("out-bad-utf8");
    run(Task.SCORE, "input", in.toString(), "output", out.toString());
    Map<Long, Row> r = parquetById(out);
    assertEquals(3, r.size());
    assertNull(r.get(0L).get(r.get(0L).fieldIndex("error")));
    assertEquals(
        "text is not valid UTF-8 (invalid byte sequence at byte offset 4)",
        r.get(1L).getString(r.get(1L).fieldIndex("error")));
    assertNull(r.get(2L).get(r.get(2L).fieldIndex("error")));
  }

  @Test
  void jsonLinesOfTextAndOfIdsToJsonAndParquet() throws Exception {
    List<Object> rows = new ArrayList<>();
    for (int i = 0; i < LINES.size(); i++) {
      rows.add(Map.of("id", "doc-" + i, "text", LINES.get(i), "source", "test"));
    }
    Path in = JobTestSupport.jsonLines(tmp.resolve("text.jsonl"), rows);
    Path out = tmp.resolve("out-json");
    run(Task.SCORE, "input", in.toString(), "output", out.toString(), "outputFormat", "json");
    List<Map<String, Object>> got = JobTestSupport.readJsonOutput(out);
    assertEquals(LINES.size(), got.size());
    for (Map<String, Object> g : got) {
      assertTrue(g.containsKey("error"), "every JSON row has error, null or not: " + g);
      assertEquals("test", g.get("source"));
      int i = Integer.parseInt(((String) g.get("id")).substring(4));
      assertEquals(
          JobTestSupport.engineLoss(engine, LINES.get(i)),
          ((Number) g.get("loss")).doubleValue(),
          1e-5);
    }

    List<Object> idRows = new ArrayList<>();
    idRows.add(Map.of("id", 7, "input_ids", List.of(72, 101, 108, 108, 111)));
    idRows.add(Map.of("id", 8, "input_ids", List.of(1, 2, 999)));
    Path ids = JobTestSupport.jsonLines(tmp.resolve("ids.jsonl"), idRows);
    Path out2 = tmp.resolve("out-ids");
    run(Task.SCORE, "input", ids.toString(), "output", out2.toString(), "logprobs", "true");
    Map<Long, Row> r = parquetById(out2);
    assertEquals(
        JobTestSupport.engineLoss(engine, "Hello"),
        r.get(7L).getDouble(r.get(7L).fieldIndex("loss")),
        1e-5);
    assertEquals(4, r.get(7L).getList(r.get(7L).fieldIndex("logprobs")).size());
    assertTrue(r.get(8L).getString(r.get(8L).fieldIndex("error")).contains("token id 999"));
  }

  @Test
  void parquetInWithAnotherTextColumnToJson() throws Exception {
    Path in = tmp.resolve("in.parquet");
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < LINES.size(); i++) {
      rows.add(RowFactory.create(100 + i, LINES.get(i)));
    }
    spark
        .createDataFrame(
            rows,
            new StructType().add("key", DataTypes.IntegerType).add("body", DataTypes.StringType))
        .write()
        .parquet(in.toString());
    Path out = tmp.resolve("out-parquet-json");
    run(
        Task.EMBED,
        "input",
        in.toString(),
        "output",
        out.toString(),
        "textCol",
        "body",
        "outputFormat",
        "json");
    List<Map<String, Object>> got = JobTestSupport.readJsonOutput(out);
    assertEquals(LINES.size(), got.size());
    for (Map<String, Object> g : got) {
      assertNotNull(g.get("key"));
      assertEquals(32, ((List<?>) g.get("embedding")).size());
    }
  }

  @Test
  void generateJob() throws Exception {
    Path in = tmp.resolve("prompts.txt");
    Files.write(in, List.of("Once upon a time", "", "The end"), StandardCharsets.UTF_8);
    Path out = tmp.resolve("out-gen");
    JobSummary s =
        run(
            Task.GENERATE,
            "input",
            in.toString(),
            "output",
            out.toString(),
            "maxNewTokens",
            "5",
            "stopIds",
            "-1");
    System.out.println(s);
    Map<Long, Row> r = parquetById(out);
    assertEquals(3, r.size());
    assertEquals(5, r.get(0L).getList(r.get(0L).fieldIndex("generated_ids")).size());
    assertNotNull(r.get(0L).getString(r.get(0L).fieldIndex("generated_text")));
    assertTrue(r.get(1L).getString(r.get(1L).fieldIndex("error")).contains("empty"));
    assertEquals(10, s.generatedTokens());
  }

  @Test
  void badInputRowsCarryErrorsAndRowsOutEqualRowsIn() throws Exception {
    StringBuilder big = new StringBuilder(5 << 20);
    while (big.length() < 5 << 20) {
      big.append("Five megabytes of text in one document, streamed in pieces. ");
    }
    List<Object> rows = new ArrayList<>();
    Map<String, Object> nullText = new HashMap<>();
    nullText.put("id", 1);
    nullText.put("text", null);
    rows.add(nullText);
    rows.add(Map.of("id", 2, "text", ""));
    rows.add(
        concat(
            "{\"id\": 3, \"text\": \"bad ".getBytes(StandardCharsets.UTF_8),
            new byte[] {(byte) 0xC3, (byte) 0x28, (byte) 0xFF},
            " bytes\"}".getBytes(StandardCharsets.UTF_8)));
    rows.add(Map.of("id", 4, "text", "a good row"));
    rows.add(Map.of("id", 5, "text", big.toString()));
    rows.add(Map.of("id", 6, "text", "x"));
    rows.add("{not json".getBytes(StandardCharsets.UTF_8));
    Path in = JobTestSupport.jsonLines(tmp.resolve("bad.jsonl"), rows);
    Path out = tmp.resolve("out-bad");
    long t0 = System.nanoTime();
    JobSummary s =
        run(Task.SCORE, "input", in.toString(), "output", out.toString(), "outputFormat", "json");
    System.out.printf("bad-input job: %.1f s; %s%n", (System.nanoTime() - t0) / 1e9, s);
    List<Map<String, Object>> got = JobTestSupport.readJsonOutput(out);
    assertEquals(rows.size(), got.size(), "rows out = rows in");
    Map<Object, Map<String, Object>> byId = new HashMap<>();
    for (Map<String, Object> g : got) {
      System.out.println(
          g.get("id")
              + " -> tokens "
              + g.get("tokens")
              + ", loss "
              + g.get("loss")
              + ", error "
              + g.get("error"));
      byId.put(g.get("id"), g);
    }
    assertTrue(((String) byId.get(1).get("error")).contains("is null"));
    assertTrue(((String) byId.get(2).get("error")).contains("empty"));
    // Spark's JSON reader cannot parse a line with invalid UTF-8 (nor one that is not JSON): such a
    // row keeps only _corrupt_record, which the error quotes
    long malformed =
        got.stream()
            .filter(
                g -> g.get("error") != null && ((String) g.get("error")).startsWith("malformed"))
            .count();
    assertEquals(2, malformed);
    assertNull(byId.get(4).get("error"));
    assertNull(byId.get(5).get("error"));
    assertEquals(big.length(), ((Number) byId.get(5).get("tokens")).intValue());
    assertTrue(((String) byId.get(6).get("error")).contains("at least 2"));
    assertEquals(5, s.errors());
  }

  static byte[] concat(byte[]... parts) {
    int n = 0;
    for (byte[] p : parts) {
      n += p.length;
    }
    byte[] r = new byte[n];
    int o = 0;
    for (byte[] p : parts) {
      System.arraycopy(p, 0, r, o, p.length);
      o += p.length;
    }
    return r;
  }

  @Test
  void missingModelFailsFastAndExistingOutputNeedsOverwrite() throws Exception {
    Path in = tmp.resolve("few.txt");
    Files.write(in, List.of("one line", "two lines"), StandardCharsets.UTF_8);
    Map<String, String> m = new HashMap<>();
    m.put(MambaSettings.MODEL.key(), tmp.resolve("nope").toString());
    m.put(MambaSettings.INPUT.key(), in.toString());
    m.put(MambaSettings.OUTPUT.key(), tmp.resolve("never").toString());
    long t0 = System.nanoTime();
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> MambaJob.run(spark, Task.SCORE, MambaSettings.of(m)));
    System.out.printf(
        "missing model: '%s' after %.2f s%n", e.getMessage(), (System.nanoTime() - t0) / 1e9);
    assertTrue(e.getMessage().contains("does not exist"));
    assertTrue(!Files.exists(tmp.resolve("never")));

    Path out = tmp.resolve("twice");
    run(Task.SCORE, "input", in.toString(), "output", out.toString());
    RuntimeException again =
        assertThrows(
            RuntimeException.class,
            () -> {
              try {
                run(Task.SCORE, "input", in.toString(), "output", out.toString());
              } catch (Exception x) {
                throw MambaJob.userError(x);
              }
            });
    System.out.println("existing output: " + again.getMessage());
    assertTrue(again.getMessage().contains("--overwrite"));
    run(Task.SCORE, "input", in.toString(), "output", out.toString(), "overwrite", "true");
  }

  @Test
  void splitIntoSentencesScoresEachSentence() throws Exception {
    List<Object> rows =
        List.of(
            Map.of("id", 1, "text", "The first sentence. The second one is here! And a third?"),
            Map.of("id", 2, "text", "Just one"));
    Path in = JobTestSupport.jsonLines(tmp.resolve("sentences.jsonl"), rows);
    Path out = tmp.resolve("out-sentences");
    run(Task.SCORE, "input", in.toString(), "output", out.toString(), "split", "sentences");
    List<Row> got =
        spark.read().parquet(out.toString()).orderBy("id", "sentence_index").collectAsList();
    got.forEach(System.out::println);
    assertEquals(4, got.size());
    Row second = got.get(1);
    assertEquals("The second one is here!", second.getString(second.fieldIndex("sentence_text")));
    assertEquals(
        JobTestSupport.engineLoss(engine, "The second one is here!"),
        second.getDouble(second.fieldIndex("loss")),
        1e-5);
    assertTrue(Arrays.asList(second.schema().fieldNames()).contains("text"), "input columns kept");
  }

  @Test
  void hdfsModelInputAndOutputThroughMiniDfsCluster() throws Exception {
    Configuration conf = new Configuration();
    conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, tmp.resolve("dfs").toString());
    MiniDFSCluster dfs = new MiniDFSCluster.Builder(conf).numDataNodes(1).build();
    try {
      dfs.waitActive();
      String base = "hdfs://localhost:" + dfs.getNameNodePort();
      FileSystem fs = dfs.getFileSystem();
      fs.copyFromLocalFile(
          new org.apache.hadoop.fs.Path(model.toUri()),
          new org.apache.hadoop.fs.Path(base + "/models/m"));
      Path local = tmp.resolve("hdfs-in.txt");
      Files.write(local, LINES, StandardCharsets.UTF_8);
      fs.copyFromLocalFile(
          new org.apache.hadoop.fs.Path(local.toUri()),
          new org.apache.hadoop.fs.Path(base + "/in/lines.txt"));
      Map<String, String> m = new HashMap<>();
      m.put(MambaSettings.MODEL.key(), base + "/models/m");
      m.put(MambaSettings.INPUT.key(), base + "/in/lines.txt");
      m.put(MambaSettings.OUTPUT.key(), base + "/out/scores");
      JobSummary s = MambaJob.run(spark, Task.SCORE, MambaSettings.of(m));
      System.out.println(s);
      assertTrue(fs.exists(new org.apache.hadoop.fs.Path(base + "/out/scores/_SUCCESS")));
      Dataset<Row> back = spark.read().parquet(base + "/out/scores");
      Map<Long, Row> r = new HashMap<>();
      for (Row row : back.collectAsList()) {
        r.put(row.getLong(0), row);
      }
      assertEquals(LINES.size(), r.size());
      assertEquals(
          JobTestSupport.engineLoss(engine, LINES.get(1)),
          r.get(1L).getDouble(r.get(1L).fieldIndex("loss")),
          1e-5);
    } finally {
      dfs.shutdown();
    }
  }
}
