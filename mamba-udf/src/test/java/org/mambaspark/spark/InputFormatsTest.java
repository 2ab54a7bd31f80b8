package org.mambaspark.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPOutputStream;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * How a corpus path's format is told: by the data files' extensions, by their first bytes where
 * they have none, Spark's bookkeeping files ignored, and one line naming --input-format when it
 * cannot be told. (Real Parquet folders, with and without extensions, and HDFS are in the jobs'
 * CorpusFormatTest.)
 */
class InputFormatsTest {
  @TempDir Path tmp;
  final Configuration conf = new Configuration();

  private Path file(String rel, String content) throws IOException {
    Path p = tmp.resolve(rel);
    Files.createDirectories(p.getParent());
    Files.writeString(p, content, StandardCharsets.UTF_8);
    return p;
  }

  private String detect(Path p) {
    return InputFormats.detect(p.toString(), conf);
  }

  @Test
  void aDatedFolderOfExtensionlessJsonLinesIsJsonWhateverSparkLeftBeside() throws IOException {
    Path day = tmp.resolve("daily/2026-11-30");
    file("daily/2026-11-30/part-00000", "\n  {\"id\": 1, \"text\": \"a\"}\n{\"id\": 2}\n");
    file("daily/2026-11-30/part-00001", "{\"id\": 3, \"text\": \"b\"}\n");
    file("daily/2026-11-30/_SUCCESS", "");
    file("daily/2026-11-30/.part-00000.crc", "PAR1 not data");
    file("daily/2026-11-30/_temporary/0/part-9", "plain text that a failed writer left");
    assertEquals("json", detect(day));
    assertEquals("json", InputFormats.resolve("", day.toString(), conf));
    assertEquals("text", InputFormats.resolve("text", day.toString(), conf), "the flag wins");
  }

  @Test
  void extensionsDecideAndCompressionSuffixesAreSeenThrough() throws IOException {
    assertEquals("text", detect(file("a/x.txt", "{ but named .txt\n")));
    assertEquals("json", detect(file("b/x.jsonl", "not looked at\n")));
    assertEquals("json", detect(file("c/part-0.json", "")));
    assertEquals("parquet", detect(file("d/part-0-c000.snappy.parquet", "")));
    assertEquals("text", InputFormats.byExtension("corpus.TXT.GZ"));
    assertEquals("json", InputFormats.byExtension("x.ndjson.bz2"));
    assertEquals(null, InputFormats.byExtension("part-00000"));
    assertEquals(null, InputFormats.byExtension("notes.md"));
  }

  @Test
  void extensionlessFilesAreSniffedAfterDecompression() throws IOException {
    Path gz = tmp.resolve("z/part-00000.gz");
    Files.createDirectories(gz.getParent());
    try (OutputStream o = new GZIPOutputStream(Files.newOutputStream(gz))) {
      o.write("{\"text\": \"compressed\"}\n".getBytes(StandardCharsets.UTF_8));
    }
    assertEquals("json", detect(tmp.resolve("z")));
    assertEquals("text", detect(file("t/part-00000", "def f():\n    return {}\n")));
    assertEquals("json", detect(file("bom/data", "\uFEFF{\"text\": \"x\"}\n")));
    assertEquals("parquet", InputFormats.sniff("PAR1\0\0".getBytes(StandardCharsets.ISO_8859_1)));
    assertEquals(null, InputFormats.sniff(" \n\t".getBytes(StandardCharsets.UTF_8)));
  }

  @Test
  void partitionFoldersAndGlobsAreSearched() throws IOException {
    file("p/day=2026-11-29/part-0", "{\"text\": \"x\"}\n");
    file("p/day=2026-11-30/part-0", "{\"text\": \"y\"}\n");
    file("p/_SUCCESS", "");
    assertEquals("json", detect(tmp.resolve("p")));
    assertEquals("json", InputFormats.detect(tmp.resolve("p") + "/day=*", conf));
    file("g/2026-11-30.txt", "one\n");
    file("g/2026-11-29.txt", "two\n");
    assertEquals("text", InputFormats.detect(tmp.resolve("g") + "/2026-11-*.txt", conf));
  }

  @Test
  void whatCannotBeToldIsOneLineNamingTheFlag() throws IOException {
    file("mixed/a.json", "{}\n");
    file("mixed/b", "plain\n");
    IllegalArgumentException mixed =
        assertThrows(IllegalArgumentException.class, () -> detect(tmp.resolve("mixed")));
    System.out.println(mixed.getMessage());
    assertTrue(mixed.getMessage().contains("json (a.json) and text (b)"), mixed.getMessage());
    file("empty/_SUCCESS", "");
    file("empty/part-00000", "");
    Files.createDirectories(tmp.resolve("none"));
    for (String dir : new String[] {"empty", "none"}) {
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> detect(tmp.resolve(dir)));
      System.out.println(e.getMessage());
      assertTrue(e.getMessage().contains("no data file"), e.getMessage());
    }
    Path orc = tmp.resolve("orc/part-00000");
    Files.createDirectories(orc.getParent());
    Files.write(orc, new byte[] {'O', 'R', 'C', 0x0a, 0, 0, 1});
    IllegalArgumentException binary =
        assertThrows(IllegalArgumentException.class, () -> detect(tmp.resolve("orc")));
    System.out.println(binary.getMessage());
    assertTrue(binary.getMessage().contains("part-00000 is neither text"), binary.getMessage());
    IllegalArgumentException missing =
        assertThrows(IllegalArgumentException.class, () -> detect(tmp.resolve("absent")));
    assertTrue(missing.getMessage().endsWith("absent does not exist"), missing.getMessage());
    IllegalArgumentException bad =
        assertThrows(
            IllegalArgumentException.class,
            () -> InputFormats.resolve("csv", tmp.toString(), conf));
    assertEquals("--input-format must be one of text, json, parquet, got 'csv'", bad.getMessage());
    // an unset option as a scheduler passes it (spark.mamba.inputFormat=) means: detect
    assertEquals("", MambaSettings.of("inputFormat", "").inputFormat);
    assertThrows(IllegalArgumentException.class, () -> MambaSettings.of("inputFormat", "csv"));
    for (IllegalArgumentException e : new IllegalArgumentException[] {mixed, bad, binary}) {
      assertTrue(e.getMessage().contains("--input-format"));
      assertFalse(e.getMessage().contains("\n"));
    }
  }
}
