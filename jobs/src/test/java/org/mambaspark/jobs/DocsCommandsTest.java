package org.mambaspark.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambaspark.cli.MambaCli;

/**
 * Every command the README and docs/ show in a {@code bash} code block works as shown: each {@code
 * bin/mamba} line runs here (its {@code target/} paths moved to a temporary directory), each {@code
 * deploy/} line is run verbatim by deploy/check.sh (CI), and {@code mvn} lines are what CI runs. A
 * block whose first line is a comment starting with {@code # needs} (a cluster, a GPU) is skipped.
 */
class DocsCommandsTest {
  static final Path ROOT = Path.of("..").toAbsolutePath().normalize();
  static final List<String> PAGES =
      List.of("README.md", "docs/jobs.md", "docs/clusters.md", "docs/benchmarks.md", "docs/gpu.md");

  @TempDir Path tmp;

  /** The command lines of a page's runnable bash blocks, continuation lines joined. */
  static List<String> commands(String markdown) {
    List<String> out = new ArrayList<>();
    boolean inBlock = false;
    boolean skip = false;
    boolean first = false;
    StringBuilder line = new StringBuilder();
    for (String raw : markdown.split("\n", -1)) {
      if (raw.startsWith("```")) {
        inBlock = !inBlock && raw.trim().equals("```bash");
        first = inBlock;
        skip = false;
        continue;
      }
      if (!inBlock) {
        continue;
      }
      if (first && raw.trim().startsWith("# needs")) {
        skip = true;
      }
      first = false;
      if (skip) {
        continue;
      }
      String l = raw.replaceAll("\\s+#.*$", "").stripTrailing(); // a trailing comment
      if (l.endsWith("\\")) {
        line.append(l.substring(0, l.length() - 1).trim()).append(' ');
        continue;
      }
      line.append(l.trim());
      String cmd = line.toString().trim();
      line.setLength(0);
      if (!cmd.isEmpty() && !cmd.startsWith("#")) {
        out.add(cmd);
      }
    }
    return out;
  }

  /** Shell words: spaces separate, single and double quotes group. */
  static List<String> words(String cmd) {
    List<String> w = new ArrayList<>();
    StringBuilder cur = new StringBuilder();
    char quote = 0;
    boolean any = false;
    for (int i = 0; i < cmd.length(); i++) {
      char ch = cmd.charAt(i);
      if (quote != 0) {
        if (ch == quote) {
          quote = 0;
        } else {
          cur.append(ch);
        }
      } else if (ch == '\'' || ch == '"') {
        quote = ch;
        any = true;
      } else if (Character.isWhitespace(ch)) {
        if (any || cur.length() > 0) {
          w.add(cur.toString());
          cur.setLength(0);
          any = false;
        }
      } else {
        cur.append(ch);
      }
    }
    if (any || cur.length() > 0) {
      w.add(cur.toString());
    }
    return w;
  }

  @Test
  void parsesBlocksAndWords() {
    String md =
        """
        x
        ```bash
        bin/mamba score --a 'b c' \\
          --d "e"   # note
        ```
        ```bash
        # needs a cluster
        bin/mamba never
        ```
        ```python
        bin/mamba no
        ```
        """;
    List<String> c = commands(md);
    assertEquals(List.of("bin/mamba score --a 'b c' --d \"e\""), c);
    assertEquals(List.of("bin/mamba", "score", "--a", "b c", "--d", "e"), words(c.get(0)));
  }

  @Test
  void everyShownCommandRuns() throws IOException {
    String check = Files.readString(ROOT.resolve("deploy/check.sh"), StandardCharsets.UTF_8);
    int ran = 0;
    for (String page : PAGES) {
      for (String cmd : commands(Files.readString(ROOT.resolve(page), StandardCharsets.UTF_8))) {
        List<String> w = words(cmd);
        if (w.get(0).equals("mvn")) {
          continue; // the build that runs this test
        }
        if (w.get(0).startsWith("deploy/")) {
          assertTrue(check.contains(cmd), page + ": deploy/check.sh does not run: " + cmd);
          continue;
        }
        assertEquals("bin/mamba", w.get(0), page + ": a command no test runs: " + cmd);
        List<String> args = new ArrayList<>();
        for (String a : w.subList(1, w.size())) {
          args.add(
              a.startsWith("target/")
                  ? tmp.resolve(a).toString()
                  : a.startsWith("models/") || a.startsWith("data/")
                      ? ROOT.resolve(a).toString()
                      : a);
        }
        System.out.println(page + ": " + cmd);
        int code = MambaCli.execute(args.toArray(new String[0]));
        assertEquals(0, code, page + ": exit status of " + cmd);
        ran++;
      }
    }
    System.out.println(ran + " commands of the docs ran");
    assertFalse(ran == 0);
  }
}
