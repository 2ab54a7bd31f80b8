package org.mambaspark.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambaspark.batch.Doc;
import org.mambaspark.batch.DocumentRunner;
import org.mambaspark.model.Generator;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.SamplingParams;
import org.mambaspark.model.Scoring;
import org.mambaspark.model.StreamingScorer;
import org.mambaspark.model.Workspace;

/**
 * The partition-level engine calls, without Spark: batched-by-length and streamed results equal the
 * engine's own one-document forward; bad documents get errors, the others results.
 */
class DocumentRunnerTest {
  @TempDir static Path tmp;
  static MambaModel model;

  @BeforeAll
  static void setUp() throws Exception {
    model = TestModels.load(TestModels.write(tmp, "m"));
  }

  static int[] randomIds(SplittableRandom r, int n) {
    int[] ids = new int[n];
    for (int i = 0; i < n; i++) {
      ids[i] = r.nextInt(256);
    }
    return ids;
  }

  static List<Doc> docs(int... lengths) { // seeded: the same lengths give the same documents
    SplittableRandom r = new SplittableRandom(lengths.length);
    List<Doc> d = new ArrayList<>();
    for (int n : lengths) {
      d.add(new Doc(randomIds(r, n)));
    }
    return d;
  }

  /** The engine's own forward over one document: HF's loss. */
  static double engineLoss(int[] ids) {
    return Scoring.meanNextTokenLoss(model, new Workspace(model.config), ids, 1, ids.length);
  }

  /** The engine's final hidden states of one document, (L, D). */
  static float[] engineHidden(int[] ids) {
    Workspace ws = new Workspace(model.config);
    model.forward(ws, ids, 1, ids.length, null, null);
    return Arrays.copyOf(ws.hidden, ids.length * model.config.hiddenSize);
  }

  @Test
  void batchedScoresEqualTheEngineOnEachDocument() {
    List<Doc> d = docs(5, 40, 17, 2, 33, 40, 9, 64, 3, 21);
    new DocumentRunner(
            model, MambaSettings.of("batchSize", "4", "batchTokens", "128").runnerOptions())
        .score(d);
    double worst = 0;
    for (Doc x : d) {
      assertNull(x.error);
      worst = Math.max(worst, Math.abs(x.loss - engineLoss(x.ids)));
    }
    System.out.printf("batched vs one document: largest |Δloss| = %.3g%n", worst);
    assertTrue(worst < 1e-5, "batched loss differs from the engine's: " + worst);
  }

  @Test
  void streamedScoreEqualsOnePassAndTheStreamingScorer() {
    List<Doc> d = docs(100);
    new DocumentRunner(
            model, MambaSettings.of("pieceLength", "7", "logprobs", "true").runnerOptions())
        .score(d);
    List<Doc> one = docs(100);
    new DocumentRunner(model, MambaSettings.of("logprobs", "true").runnerOptions()).score(one);
    StreamingScorer ss = new StreamingScorer(model, 13);
    ss.accept(d.get(0).ids, 0, 100);
    double direct = engineLoss(d.get(0).ids);
    System.out.printf(
        "streamed %.7f, batched %.7f, StreamingScorer %.7f, engine %.7f%n",
        d.get(0).loss, one.get(0).loss, ss.meanLoss(), direct);
    assertEquals(direct, d.get(0).loss, 1e-5);
    assertEquals(direct, ss.meanLoss(), 1e-5);
    assertEquals(99, d.get(0).logprobs.length);
    double sum = 0, worst = 0;
    for (int i = 0; i < 99; i++) {
      sum -= d.get(0).logprobs[i];
      worst = Math.max(worst, Math.abs(d.get(0).logprobs[i] - one.get(0).logprobs[i]));
    }
    assertEquals(d.get(0).loss, sum / 99, 1e-5);
    assertTrue(worst < 1e-4, "streamed and batched logprobs differ by " + worst);
  }

  @Test
  void embeddingsPoolTheEnginesHiddenStates() {
    int D = model.config.hiddenSize;
    for (String pooling : new String[] {"mean", "last"}) {
      List<Doc> batched = docs(12, 30, 7);
      List<Doc> streamed = docs(12, 30, 7);
      new DocumentRunner(model, MambaSettings.of("pooling", pooling).runnerOptions())
          .embed(batched);
      new DocumentRunner(
              model, MambaSettings.of("pooling", pooling, "pieceLength", "5").runnerOptions())
          .embed(streamed);
      for (int k = 0; k < 3; k++) {
        int[] ids = batched.get(k).ids;
        float[] h = engineHidden(ids);
        float[] expect = new float[D];
        if (pooling.equals("last")) {
          System.arraycopy(h, (ids.length - 1) * D, expect, 0, D);
        } else {
          for (int t = 0; t < ids.length; t++) {
            for (int j = 0; j < D; j++) {
              expect[j] += h[t * D + j] / ids.length;
            }
          }
        }
        assertArrayEquals(expect, batched.get(k).embedding, 1e-4f, pooling + " batched");
        assertArrayEquals(expect, streamed.get(k).embedding, 1e-4f, pooling + " streamed");
      }
    }
  }

  @Test
  void generationEqualsTheGenerator() {
    List<Doc> d = docs(10, 3);
    new DocumentRunner(
            model, MambaSettings.of("maxNewTokens", "12", "stopIds", "-1").runnerOptions())
        .generate(d);
    for (Doc x : d) {
      int[] expect =
          new Generator(model)
              .generate(x.ids, new SamplingParams(12, 0f, 0, 1f, 0, new int[] {-1}), null);
      assertArrayEquals(expect, x.generated);
    }
  }

  @Test
  void threadsSharingOneRunnerGenerate() throws Exception {
    DocumentRunner r =
        new DocumentRunner(
            model, MambaSettings.of("maxNewTokens", "5", "stopIds", "-1").runnerOptions());
    java.util.concurrent.ExecutorService pool =
        java.util.concurrent.Executors.newFixedThreadPool(4);
    List<java.util.concurrent.Future<String>> fs = new ArrayList<>();
    for (int t = 0; t < 16; t++) {
      int seed = t;
      fs.add(
          pool.submit(
              () -> {
                List<Doc> d = docs(3 + seed % 5, 7, 1);
                r.generate(d);
                for (Doc x : d) {
                  if (!x.ok()) {
                    return x.error;
                  }
                }
                return null;
              }));
    }
    for (java.util.concurrent.Future<String> f : fs) {
      assertNull(f.get());
    }
    pool.shutdown();
  }

  @Test
  void badDocumentsGetErrorsAndTheOthersResults() {
    List<Doc> d = new ArrayList<>();
    d.add(new Doc(new int[0]));
    d.add(new Doc(new int[] {5}));
    d.add(new Doc(new int[] {5, 300, 7}));
    d.add(new Doc(new int[] {5, -1, 7}));
    d.add(new Doc(new int[20]));
    d.add(Doc.failed("unreadable"));
    d.add(new Doc(new int[] {1, 2, 3}));
    new DocumentRunner(model, MambaSettings.of("maxTokens", "10").runnerOptions()).score(d);
    assertTrue(d.get(0).error.contains("empty"), d.get(0).error);
    assertTrue(d.get(1).error.contains("at least 2"), d.get(1).error);
    assertTrue(d.get(2).error.contains("token id 300 at position 1"), d.get(2).error);
    assertTrue(d.get(3).error.contains("token id -1"), d.get(3).error);
    assertTrue(d.get(4).error.contains("maxTokens"), d.get(4).error);
    assertEquals("unreadable", d.get(5).error);
    assertNull(d.get(6).error);
    assertEquals(engineLoss(new int[] {1, 2, 3}), d.get(6).loss, 1e-5);
    for (Doc x : d) {
      System.out.println("error: " + x.error);
    }
  }

  @Test
  void planGroupsEveryDocumentOnceWithinTheCaps() {
    SplittableRandom r = new SplittableRandom(3);
    int[] lengths = new int[200];
    for (int i = 0; i < lengths.length; i++) {
      lengths[i] = 1 + r.nextInt(300);
    }
    List<int[]> groups = DocumentRunner.plan(lengths, 8, 1024, 0.1);
    boolean[] seen = new boolean[lengths.length];
    int batched = 0;
    for (int[] g : groups) {
      int longest = 0, sum = 0;
      for (int i : g) {
        assertTrue(!seen[i], "document in two groups");
        seen[i] = true;
        longest = Math.max(longest, lengths[i]);
        sum += lengths[i];
      }
      assertTrue(g.length <= 8);
      assertTrue(g.length == 1 || g.length * longest <= 1024);
      assertTrue(g.length * longest - sum <= 0.1 * g.length * longest, "padding over 10%");
      batched += g.length > 1 ? g.length : 0;
    }
    System.out.printf("%d documents in %d forwards%n", lengths.length, groups.size());
    assertTrue(batched > lengths.length / 2, "most documents share a forward");
    for (boolean s : seen) {
      assertTrue(s);
    }
    assertNotNull(groups);
  }
}
