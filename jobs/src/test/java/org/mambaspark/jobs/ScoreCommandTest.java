package org.mambaspark.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambaspark.cli.MambaCli;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.MambaModel;

/**
 * {@code bin/mamba score --model DIR --input IN.jsonl --output OUT --output-format json --master
 * local[2]}, in process (the CLI starts and stops its own Spark), IN.jsonl holding {@code id} and
 * {@code input_ids}; and its one-line errors.
 */
class ScoreCommandTest {
  @TempDir Path tmp;

  static final class Run {
    final int code;
    final String out;
    final String err;

    Run(String... args) {
      PrintStream oldOut = System.out, oldErr = System.err;
      ByteArrayOutputStream o = new ByteArrayOutputStream(), e = new ByteArrayOutputStream();
      try {
        System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
        code = MambaCli.execute(args);
      } finally {
        System.setOut(oldOut);
        System.setErr(oldErr);
      }
      out = o.toString(StandardCharsets.UTF_8);
      err = e.toString(StandardCharsets.UTF_8);
    }
  }

  @Test
  void scoreCommandWritesJsonLinesWithIdLossTokensError() throws Exception {
    Path model = JobTestSupport.writeModel(tmp.resolve("model"));
    MambaModel engine = new MambaModel(Checkpoint.load(model));
    List<Object> rows = new ArrayList<>();
    rows.add(Map.of("id", "a", "input_ids", List.of(10, 20, 30, 40, 50)));
    rows.add(Map.of("id", "b", "input_ids", List.of(7, 7, 7)));
    rows.add(Map.of("id", "c", "input_ids", List.of(1, 256)));
    Path in = JobTestSupport.jsonLines(tmp.resolve("IN.jsonl"), rows);
    Path out = tmp.resolve("OUT");
    Run r =
        new Run(
            "score",
            "--model",
            model.toString(),
            "--input",
            in.toString(),
            "--output",
            out.toString(),
            "--output-format",
            "json",
            "--master",
            "local[2]",
            "--show",
            "3");
    System.out.println(r.out);
    assertEquals(0, r.code, r.err);
    assertTrue(r.out.contains("mamba score: 3 documents, 10 tokens, 1 errors"), r.out);
    List<Map<String, Object>> got = JobTestSupport.readJsonOutput(out);
    assertEquals(3, got.size());
    for (Map<String, Object> g : got) {
      assertTrue(g.keySet().containsAll(List.of("id", "loss", "tokens", "error")), g.toString());
      if (g.get("id").equals("a")) {
        assertNull(g.get("error"));
        assertEquals(5, g.get("tokens"));
        assertEquals(
            JobTestSupport.engineLoss(engine, new int[] {10, 20, 30, 40, 50}),
            ((Number) g.get("loss")).doubleValue(),
            1e-5);
      }
      if (g.get("id").equals("c")) {
        assertTrue(((String) g.get("error")).contains("token id 256 at position 1"));
      }
    }

    Run bad =
        new Run(
            "score",
            "--model",
            tmp.resolve("missing").toString(),
            "--input",
            in.toString(),
            "--output",
            tmp.resolve("OUT2").toString(),
            "--master",
            "local[2]");
    assertEquals(1, bad.code);
    assertTrue(bad.err.strip().startsWith("error: model "), bad.err);
    assertTrue(bad.err.contains("does not exist"), bad.err);
    assertTrue(!bad.err.contains("\tat "), "no stack trace: " + bad.err);
  }
}
