package org.mambaspark.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.mambaspark.batch.Doc;
import org.mambaspark.batch.DocumentRunner;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;

/**
 * How far a document's score and embedding move with the documents that share its forward: the same
 * document alone (as a UDF call runs it), in batches with documents of other lengths (as the jobs
 * and the ML stage run it, padded to the longest), and streamed in pieces. Padding cannot reach it;
 * what differs is rounding — a short document alone takes the matmuls' dot products, a batch the
 * GEMM — and the JIT's (the Vector API's lane sums may add in another order before and after
 * compilation). The bounds are relative to max(1, |value|); the largest differences seen are
 * printed.
 *
 * <p>The model is wide enough (D = 256, ED = 512) for the matmuls to meet both paths.
 */
class BatchInvarianceTest {
  /** Loss and log-probabilities. */
  static final double SCORE_BOUND = 4e-6;

  /** Embedding elements (pooled hidden states, of order 1). */
  static final double EMBED_BOUND = 1e-5;

  static MambaModel model;
  static double worstScore;
  static double worstEmbed;

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

  static List<Doc> run(MambaSettings s, Task task, List<int[]> batch) {
    List<Doc> docs = new ArrayList<>();
    for (int[] d : batch) {
      docs.add(new Doc(d));
    }
    DocumentRunner r = new DocumentRunner(model, s.runnerOptions());
    if (task == Task.SCORE) {
      r.score(docs);
    } else {
      r.embed(docs);
    }
    for (Doc d : docs) {
      assertNull(d.error);
    }
    return docs;
  }

  static double close(double a, double b, double bound, String what) {
    double rel = Math.abs(a - b) / Math.max(1, Math.abs(a));
    assertEquals(a, b, bound * Math.max(1, Math.abs(a)), what);
    return rel;
  }

  static double close(float[] a, float[] b, double bound, String what) {
    assertEquals(a.length, b.length, what);
    double worst = 0;
    for (int i = 0; i < a.length; i++) {
      worst = Math.max(worst, close(a[i], b[i], bound, what + " [" + i + "]"));
    }
    return worst;
  }

  /** Batch-mates shorter and longer than the document (it is padded, or pads them). */
  static List<int[]> withOthers(int[] doc, int others) {
    List<int[]> mixed = new ArrayList<>();
    for (int k = 0; k < others; k++) {
      mixed.add(ids(1000 + k, 2 + (k * 37 + doc.length) % 150));
    }
    mixed.add(doc);
    return mixed;
  }

  @Test
  void aDocumentScoresAloneBatchedWithOthersAndStreamedWithinTheBound() {
    MambaSettings batched =
        MambaSettings.of(
            "batchSize", "16", "batchTokens", "100000", "logprobs", "true", "maxPadding", "1");
    MambaSettings streamed = MambaSettings.of("pieceLength", "4", "logprobs", "true");
    for (int n : new int[] {2, 3, 5, 11, 47, 48, 130, 131}) {
      int[] doc = ids(n, n);
      Doc alone = run(batched, Task.SCORE, List.of(doc)).get(0);
      List<int[]> mixed = withOthers(doc, 1 + n % 9);
      Doc inBatch = run(batched, Task.SCORE, mixed).get(mixed.size() - 1);
      Doc pieces = run(streamed, Task.SCORE, List.of(doc)).get(0);
      System.out.printf(
          "n=%d: loss alone %.17g, with %d others %.17g, streamed %.17g%n",
          n, alone.loss, mixed.size() - 1, inBatch.loss, pieces.loss);
      for (Doc other : new Doc[] {inBatch, pieces}) {
        worstScore = Math.max(worstScore, close(alone.loss, other.loss, SCORE_BOUND, "loss " + n));
        worstScore =
            Math.max(
                worstScore, close(alone.logprobs, other.logprobs, SCORE_BOUND, "logprobs " + n));
      }
      double mean = 0;
      for (float lp : alone.logprobs) {
        mean -= lp;
      }
      assertEquals(mean / (n - 1), alone.loss, 0.0, "the loss is the mean of its logprobs");
    }
  }

  @Test
  void aDocumentEmbedsAloneAndBatchedWithOthersWithinTheBound() {
    for (String pooling : new String[] {"mean", "last"}) {
      MambaSettings s = MambaSettings.of("pooling", pooling, "maxPadding", "1");
      MambaSettings streamed = MambaSettings.of("pooling", pooling, "pieceLength", "5");
      for (int n : new int[] {1, 6, 40, 90}) {
        int[] doc = ids(n, n);
        float[] alone = run(s, Task.EMBED, List.of(doc)).get(0).embedding;
        List<int[]> mixed = withOthers(doc, 3);
        float[] inBatch = run(s, Task.EMBED, mixed).get(3).embedding;
        float[] pieces = run(streamed, Task.EMBED, List.of(doc)).get(0).embedding;
        worstEmbed = Math.max(worstEmbed, close(alone, inBatch, EMBED_BOUND, pooling + " " + n));
        worstEmbed = Math.max(worstEmbed, close(alone, pieces, EMBED_BOUND, pooling + " " + n));
      }
    }
  }

  @AfterAll
  static void report() {
    System.out.printf(
        "alone vs batched vs streamed: largest relative difference %.3g (loss, logprobs; bound"
            + " %.0e), %.3g (embeddings; bound %.0e)%n",
        worstScore, SCORE_BOUND, worstEmbed, EMBED_BOUND);
  }
}
