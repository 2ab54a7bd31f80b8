package org.mambaspark.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.ops.Simd;

/**
 * A document's score and embedding do not depend on the documents that share its forward: the same
 * document alone (as a UDF call runs it), in batches with documents of other lengths (as the jobs
 * and the ML stage run it, padded to the longest), and streamed in pieces.
 *
 * <p>On the scalar path ({@code -Dmamba.simd=false}, the pom's {@code scalar-path} execution) they
 * are the same bits. On the Vector API path the arithmetic is the same too, but the Vector API's
 * exp, log1p and lane sums round differently in the interpreter and in JIT-compiled code, so a
 * document's numbers may move in their last bits when the JIT compiles the engine between two
 * calls: there they are held to {@link #SIMD_BOUND} (relative), the largest difference printed.
 *
 * <p>The model is wide enough (D = 256, ED = 512) for the matmuls to meet every path a forward can
 * take: a handful of rows (a short document alone) and many (a batch), edge tiles and full ones.
 */
@Tag("scalar-path")
class BatchInvarianceTest {
  /** Relative bound on the Vector API path (the JIT's rounding of exp and lane sums). */
  static final double SIMD_BOUND = 1e-6;

  static double worst;

  /**
   * Asserts a == b exactly on the scalar path, within SIMD_BOUND (relative) with the Vector API.
   */
  static void same(double a, double b, String what) {
    double tol = Simd.ENABLED ? SIMD_BOUND * Math.max(1, Math.abs(a)) : 0;
    worst = Math.max(worst, Math.abs(a - b) / Math.max(1, Math.abs(a)));
    assertEquals(a, b, tol, what);
  }

  static void same(float[] a, float[] b, String what) {
    assertEquals(a.length, b.length, what);
    for (int i = 0; i < a.length; i++) {
      same(a[i], b[i], what + " [" + i + "]");
    }
  }

  static MambaModel model;

  @BeforeAll
  static void setUp() {
    MambaConfig c =
        MambaConfig.builder()
            .vocabSize(256)
            .hiddenSize(256)
            .stateSize(16)
            .numLayers(2)
            .convKernel(3)
            .build();
    model = new MambaModel(Initialization.initialize(c, 5));
  }

  static int[] ids(long seed, int n) {
    return new SplittableRandom(seed).ints(n, 0, 256).toArray();
  }

  static Doc score(MambaSettings s, List<int[]> batch, int which) {
    List<Doc> docs = new ArrayList<>();
    for (int[] d : batch) {
      docs.add(new Doc(d));
    }
    new DocumentRunner(model, s).score(docs);
    Doc d = docs.get(which);
    assertNull(d.error);
    return d;
  }

  static float[] embed(MambaSettings s, List<int[]> batch, int which) {
    List<Doc> docs = new ArrayList<>();
    for (int[] d : batch) {
      docs.add(new Doc(d));
    }
    new DocumentRunner(model, s).embed(docs);
    return docs.get(which).embedding;
  }

  @Test
  void aDocumentScoresTheSameAloneBatchedWithOthersAndStreamed() {
    MambaSettings big =
        MambaSettings.of(
            "batchSize", "16", "batchTokens", "100000", "logprobs", "true", "maxPadding", "1");
    for (int n : new int[] {2, 3, 5, 11, 47, 48, 130, 131}) {
      int[] doc = ids(n, n);
      Doc alone = score(big, List.of(doc), 0);
      // batch-mates shorter and longer (the document is padded, or pads them), 1 to 9 of them
      List<int[]> mixed = new ArrayList<>();
      for (int k = 0; k < 1 + n % 9; k++) {
        mixed.add(ids(1000 + k, 2 + (k * 37 + n) % 150));
      }
      mixed.add(doc);
      Doc batched = score(big, mixed, mixed.size() - 1);
      Doc streamed =
          score(MambaSettings.of("pieceLength", "4", "logprobs", "true"), List.of(doc), 0);
      System.out.printf(
          "n=%d: loss alone %.17g, with %d others %.17g, streamed %.17g%n",
          n, alone.loss, mixed.size() - 1, batched.loss, streamed.loss);
      same(alone.loss, batched.loss, "alone vs batched, n=" + n);
      same(alone.logprobs, batched.logprobs, "logprobs, n=" + n);
      same(alone.loss, streamed.loss, "alone vs streamed, n=" + n);
      same(alone.logprobs, streamed.logprobs, "streamed logprobs, n=" + n);
      double mean = 0;
      for (float lp : alone.logprobs) {
        mean -= lp;
      }
      assertEquals(mean / (n - 1), alone.loss, 0.0, "the loss is the mean of its logprobs");
    }
  }

  @Test
  void aDocumentEmbedsTheSameAloneAndBatchedWithOthers() {
    for (String pooling : new String[] {"mean", "last"}) {
      MambaSettings s = MambaSettings.of("pooling", pooling, "maxPadding", "1");
      for (int n : new int[] {1, 6, 40, 90}) {
        int[] doc = ids(n, n);
        float[] alone = embed(s, List.of(doc), 0);
        List<int[]> mixed = new ArrayList<>(List.of(ids(7, 3), ids(8, 77), ids(9, 120), doc));
        float[] batched = embed(s, mixed, 3);
        float[] streamed =
            embed(MambaSettings.of("pooling", pooling, "pieceLength", "5"), List.of(doc), 0);
        same(alone, batched, pooling + " n=" + n);
        same(alone, streamed, pooling + " streamed n=" + n);
      }
    }
  }

  @AfterAll
  static void report() {
    System.out.printf(
        "alone vs batched vs streamed (%s): largest relative difference %.3g%n",
        Simd.ENABLED ? "Vector API path" : "scalar path", worst);
  }
}
