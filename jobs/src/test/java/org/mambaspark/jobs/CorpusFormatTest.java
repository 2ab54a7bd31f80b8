package org.mambaspark.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambaspark.spark.MambaSettings;
import org.mambaspark.spark.Task;

/**
 * The score job on folders whose files carry no extension, without --input-format: Parquet part
 * files renamed, JSON lines on HDFS (MiniDFSCluster); a folder it cannot judge stops the job with
 * one line naming --input-format, before anything is written.
 */
class CorpusFormatTest {
  @TempDir static Path tmp;
  static SparkSession spark;
  static Path model;

  static final List<String> TEXTS =
      List.of(
          "The scan runs forward in time.", "ok then", "Selective state spaces keep what matters.");

  @BeforeAll
  static void start() throws Exception {
    model = JobTestSupport.writeModel(tmp.resolve("model"));
    spark =
        SparkSession.builder()
            .master("local[2]")
            .appName("CorpusFormatTest")
            .config("spark.ui.enabled", "false")
            .getOrCreate();
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  static JobSummary score(String input, String output) {
    Map<String, String> m = new HashMap<>();
    m.put(MambaSettings.MODEL.key(), model.toString());
    m.put(MambaSettings.INPUT.key(), input);
    m.put(MambaSettings.OUTPUT.key(), output);
    return MambaJob.run(spark, Task.SCORE, MambaSettings.of(m));
  }

  static String jsonLine(int i) {
    return "{\"id\": " + i + ", \"text\": \"" + TEXTS.get(i) + "\"}";
  }

  @Test
  void parquetPartFilesWithoutTheirExtension() throws IOException {
    Path in = tmp.resolve("pq");
    spark
        .read()
        .json(
            spark.createDataset(
                List.of(jsonLine(0), jsonLine(1), jsonLine(2)),
                org.apache.spark.sql.Encoders.STRING()))
        .repartition(2)
        .write()
        .parquet(in.toString());
    try (Stream<Path> files = Files.list(in)) {
      for (Path f : files.toList()) {
        String n = f.getFileName().toString();
        if (n.endsWith(".parquet")) {
          Files.move(f, f.resolveSibling(n.substring(0, n.indexOf('.'))));
        }
      }
    }
    JobSummary s = score(in.toString(), tmp.resolve("pq-out").toString());
    assertEquals(TEXTS.size(), s.documents());
    assertEquals(0, s.errors());
  }

  @Test
  void jsonLinesWithoutExtensionOnHdfs() throws Exception {
    Configuration conf = new Configuration();
    conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, tmp.resolve("dfs").toString());
    MiniDFSCluster dfs = new MiniDFSCluster.Builder(conf).numDataNodes(1).build();
    try {
      dfs.waitActive();
      String base = "hdfs://localhost:" + dfs.getNameNodePort();
      FileSystem fs = dfs.getFileSystem();
      Path local = tmp.resolve("hdfs-day");
      Files.createDirectories(local);
      Files.write(
          local.resolve("part-00000"), List.of(jsonLine(0), jsonLine(1)), StandardCharsets.UTF_8);
      Files.write(local.resolve("part-00001"), List.of(jsonLine(2)), StandardCharsets.UTF_8);
      Files.writeString(local.resolve("_SUCCESS"), "");
      fs.copyFromLocalFile(
          new org.apache.hadoop.fs.Path(local.toUri()),
          new org.apache.hadoop.fs.Path(base + "/corpus/daily/2026-11-30"));
      JobSummary s = score(base + "/corpus/daily/2026-11-30", base + "/scores/2026-11-30");
      System.out.println(s);
      assertEquals(TEXTS.size(), s.documents());
      assertEquals(0, s.errors());
    } finally {
      dfs.shutdown();
    }
  }

  @Test
  void aFolderThatCannotBeJudgedStopsTheJobNamingTheFlag() throws IOException {
    Path in = tmp.resolve("mixed");
    Files.createDirectories(in);
    Files.writeString(in.resolve("a.json"), jsonLine(0) + "\n");
    Files.writeString(in.resolve("b"), "plain text\n");
    Path out = tmp.resolve("mixed-out");
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> score(in.toString(), out.toString()));
    System.out.println("error: " + e.getMessage());
    assertTrue(e.getMessage().contains("--input-format"), e.getMessage());
    assertTrue(!Files.exists(out), "nothing written");
  }
}
