package org.mambaspark.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambaspark.io.SafetensorsFile;
import org.mambaspark.io.SafetensorsWriter;

/**
 * bin/mamba's commands end to end, in process, on the fixtures; user mistakes give one error line,
 * no trace.
 */
class MambaCliTest {
  @TempDir Path tmp;

  static Path fixture(String name) {
    String p = System.getProperty("mamba.fixtures", "../fixtures");
    return Paths.get(p).resolve(name);
  }

  /** Runs the CLI, capturing stdout and stderr. */
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

    String lastLine() {
      String s = out.strip();
      return s.substring(s.lastIndexOf('\n') + 1);
    }
  }

  static double relErr(float[] a, float[] b) {
    double num = 0, den = 0;
    for (int i = 0; i < a.length; i++) {
      num += ((double) a[i] - b[i]) * ((double) a[i] - b[i]);
      den += (double) b[i] * b[i];
    }
    return Math.sqrt(num / den);
  }

  @ParameterizedTest
  @ValueSource(strings = {"tiny", "falcon_tiny", "mamba2_small"})
  void forwardWritesWhatTransformersComputes(String fixture) throws Exception {
    Path in = tmp.resolve("in.safetensors"), out = tmp.resolve("out.safetensors");
    try (SafetensorsFile exp =
        SafetensorsFile.open(fixture(fixture).resolve("expected.safetensors"))) {
      new SafetensorsWriter()
          .addLongs("input_ids", exp.info("input_ids").shape(), exp.readLongs("input_ids"))
          .write(in);
      Run r =
          new Run(
              "forward",
              "--grads",
              "--model",
              fixture(fixture).resolve("model").toString(),
              "--input",
              in.toString(),
              "--output",
              out.toString());
      assertEquals(0, r.code, r.err);
      try (SafetensorsFile got = SafetensorsFile.open(out)) {
        double worst = 0;
        for (String name : exp.names()) {
          if (name.startsWith("generate.") || name.equals("input_ids")) {
            continue;
          }
          double err = relErr(got.readFloats(name), exp.readFloats(name));
          worst = Math.max(worst, err);
          assertTrue(err < (name.startsWith("grad.") ? 1e-4 : 1e-5), name + " rel err " + err);
        }
        System.out.printf(
            "cli forward --grads [%s]: every output and gradient, largest rel err %.2e%n",
            fixture, worst);
      }
    }
  }

  @Test
  void generateLastLineIsTheNewIds() throws Exception {
    try (SafetensorsFile exp =
        SafetensorsFile.open(fixture("small").resolve("expected.safetensors"))) {
      long[] prompt = exp.readLongs("generate.prompt"), full = exp.readLongs("generate.output");
      String ids = Arrays.stream(prompt).mapToObj(Long::toString).collect(Collectors.joining(","));
      String want =
          Arrays.stream(full, prompt.length, full.length)
              .mapToObj(Long::toString)
              .collect(Collectors.joining(","));
      Run r =
          new Run(
              "generate",
              "--model",
              fixture("small").resolve("model").toString(),
              "--prompt-ids",
              ids,
              "--max-new-tokens",
              Integer.toString(full.length - prompt.length),
              "--stop-ids",
              "-1");
      assertEquals(0, r.code, r.err);
      assertEquals(want, r.lastLine());
    }
  }

  /** init --arch writes a checkpoint of that architecture that the other commands run. */
  @ParameterizedTest
  @ValueSource(strings = {"mamba2", "falcon-mamba"})
  void initAnArchitectureThenGenerate(String arch) throws Exception {
    Path dir = tmp.resolve(arch);
    Run init =
        new Run(
            "init",
            "--arch",
            arch,
            "--out",
            dir.toString(),
            "--hidden-size",
            "32",
            "--layers",
            "2",
            "--state-size",
            "8",
            "--head-dim",
            "16",
            "--groups",
            "2",
            "--chunk-size",
            "8");
    assertEquals(0, init.code, init.err);
    org.mambaspark.model.MambaConfig c = org.mambaspark.io.Checkpoint.load(dir).config;
    assertEquals(org.mambaspark.model.Architecture.ofCliName(arch), c.architecture);
    Run gen =
        new Run(
            "generate", "--model", dir.toString(), "--prompt", "hello", "--max-new-tokens", "5");
    assertEquals(0, gen.code, gen.err);
    System.out.println("init --arch " + arch + ": " + init.out.strip() + "\n" + gen.out.strip());
    Path corpus = tmp.resolve("corpus.txt");
    Files.writeString(corpus, "the state carries what the model remembers. ".repeat(40));
    Path trained = tmp.resolve(arch + "-trained");
    Run train =
        new Run(
            "train-local",
            "--init",
            dir.toString(),
            "--corpus",
            corpus.toString(),
            "--out",
            trained.toString(),
            "--steps",
            "3",
            "--batch",
            "2",
            "--micro-batch",
            "1",
            "--seq-len",
            "16",
            "--warmup",
            "1",
            "--eval-every",
            "0");
    assertEquals(0, train.code, train.err);
    assertEquals(c, org.mambaspark.io.Checkpoint.load(trained).config, "trained in kind");
    Run mismatch =
        new Run("init", "--arch", arch, "--preset", "mamba-130m", "--out", dir.toString());
    Run unknown = new Run("init", "--arch", "mamba3", "--out", tmp.resolve("x").toString());
    for (Run r : new Run[] {mismatch, unknown}) {
      assertEquals(1, r.code, r.err);
      assertTrue(r.err.startsWith("error: ") && r.err.contains("arch"), r.err);
    }
  }

  @Test
  void userMistakesGiveOneLineAndNoStackTrace() throws Exception {
    Path model = fixture("tiny").resolve("model");
    Run missing =
        new Run("generate", "--model", tmp.resolve("nope").toString(), "--prompt-ids", "1");
    Run badId = new Run("generate", "--model", model.toString(), "--prompt-ids", "1,99999");
    Run noTok = new Run("generate", "--model", model.toString(), "--prompt", "hello");
    Path junk = tmp.resolve("junk.safetensors");
    Files.write(junk, new byte[] {1, 2, 3});
    Run badInput =
        new Run(
            "forward",
            "--model",
            model.toString(),
            "--input",
            junk.toString(),
            "--output",
            tmp.resolve("o.safetensors").toString());
    Run badFlag =
        new Run("generate", "--model", model.toString(), "--prompt-ids", "1", "--top-p", "7");
    for (Run r : new Run[] {missing, badId, noTok, badInput, badFlag}) {
      System.out.println("cli error: " + r.err.strip());
      assertTrue(r.code != 0);
      assertTrue(r.err.startsWith("error: ") || r.err.contains("Usage"), r.err);
      assertTrue(!r.err.contains("\tat "), "stack trace printed: " + r.err);
    }
    assertTrue(badId.err.contains("99999"), badId.err);
    assertTrue(badInput.err.contains("junk.safetensors"), badInput.err);
    assertTrue(!Files.exists(tmp.resolve("o.safetensors")), "no half-written output");
  }

  @Test
  void compareMeasuresHowFarTwoCheckpointsAre() throws Exception {
    Path small = fixture("small").resolve("model");
    Path a = tmp.resolve("cmp-a"), b = tmp.resolve("cmp-b");
    org.mambaspark.model.MambaWeights w = org.mambaspark.io.Checkpoint.load(small);
    org.mambaspark.io.Checkpoint.save(w, a);
    // one weight moved by 1e-3 of the whole parameter norm: overall error 1e-3
    double norm = 0;
    for (org.mambaspark.model.NamedTensor t : w.parameters()) {
      for (float v : t.data) {
        norm += (double) v * v;
      }
    }
    w.parameters().get(0).data[0] += (float) (1e-3 * Math.sqrt(norm));
    org.mambaspark.io.Checkpoint.save(w, b);
    Run same = new Run("compare", "--a", a.toString(), "--b", a.toString());
    Run apart = new Run("compare", "--a", b.toString(), "--b", a.toString());
    Run loose = new Run("compare", "--a", b.toString(), "--b", a.toString(), "--tolerance", "2e-3");
    System.out.print(same.out + apart.out);
    assertEquals(0, same.code, same.out + same.err);
    assertTrue(same.out.contains("overall rel err 0.000e+00"), same.out);
    assertEquals(1, apart.code, apart.out + apart.err);
    assertTrue(apart.out.contains("overall rel err 1.000e-03"), apart.out);
    assertEquals(0, loose.code, loose.out + loose.err);
  }
}
