package org.mambaspark.spark;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.mambaspark.model.Generator;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.MambaState;
import org.mambaspark.model.SamplingParams;
import org.mambaspark.model.Scoring;
import org.mambaspark.model.Workspace;

/**
 * Runs a window of documents through the engine: the partition-level work of the score, embed and
 * generate tasks, with no Spark in it (the Spark glue hands it token ids and reads back results).
 *
 * <p>Batching: documents up to {@link MambaSettings#pieceLength} tokens are sorted by length and
 * grouped, at most {@code batchSize} documents and {@code batchTokens} positions (B·L, L the
 * longest in the group) per forward, the shorter ones right-padded. Padding cannot change a
 * document's result: the model is causal (the conv looks back, the scan runs forward), so positions
 * before the padding never see it, and the padded positions are not read.
 *
 * <p>Streaming: a longer document runs alone, in pieces of {@code pieceLength} tokens with the
 * recurrent state (h and the last K-1 conv inputs) carried from piece to piece, as {@link
 * org.mambaspark.model.StreamingScorer} does: the same result as one pass, memory bounded by the
 * piece.
 *
 * <p>Errors: a document the engine rejects gets {@link Doc#error}; when a batched forward fails,
 * its documents are retried one by one so that only the bad one carries the error.
 *
 * <p>One per task thread (it owns a {@link Workspace}); the model is shared.
 */
public final class DocumentRunner {
  private final MambaModel model;
  private final MambaConfig c;
  private final MambaSettings s;
  private final Workspace ws;
  private final int padId;
  private Generator generator; // generate: created on first use

  public DocumentRunner(MambaModel model, MambaSettings settings) {
    this.model = model;
    this.c = model.config;
    this.s = settings;
    this.ws = new Workspace(c);
    this.padId = c.padTokenId >= 0 && c.padTokenId < c.vocabSize ? c.padTokenId : 0;
  }

  /** score: sets each good document's {@link Doc#loss} (and logprobs when asked), or its error. */
  public void score(List<Doc> docs) {
    run(docs, Task.SCORE);
  }

  /** embed: sets each good document's {@link Doc#embedding} ({@code pooling}), or its error. */
  public void embed(List<Doc> docs) {
    run(docs, Task.EMBED);
  }

  /** generate: sets each good document's {@link Doc#generated}, or its error. */
  public void generate(List<Doc> docs) {
    generate(docs, s.maxNewTokens);
  }

  /** generate, with at most {@code maxNewTokens} new tokens per document. */
  public void generate(List<Doc> docs, int maxNewTokens) {
    for (Doc d : docs) {
      if (!check(d, Task.GENERATE)) {
        continue;
      }
      try {
        if (generator == null) {
          generator = new Generator(model);
        }
        d.generated = generator.generate(d.ids, sampling(d.ids, maxNewTokens), null);
      } catch (RuntimeException e) {
        d.error = message(e);
      }
    }
  }

  /** The sampling of one prompt: the configured seed mixed with the prompt, so retries agree. */
  SamplingParams sampling(int[] prompt, int maxNewTokens) {
    int[] stops = stopIds();
    long seed = s.seed + 0x9E3779B97F4A7C15L * Arrays.hashCode(prompt);
    return new SamplingParams(maxNewTokens, s.temperature, s.topK, s.topP, seed, stops);
  }

  /** The ids that end a continuation: the configured ones, else the model's eos. */
  int[] stopIds() {
    return s.stopIds != null ? s.stopIds.clone() : new int[] {c.eosTokenId};
  }

  /** How many of the generated ids make the text: all but a final stop token. */
  int textLength(int[] generated) {
    int n = generated.length;
    if (n > 0) {
      for (int stop : stopIds()) {
        if (generated[n - 1] == stop) {
          return n - 1;
        }
      }
    }
    return n;
  }

  /** Rejects what the engine cannot run, with a message for the row. */
  boolean check(Doc d, Task task) {
    if (!d.ok()) {
      return false;
    }
    int n = d.tokens();
    int min = task == Task.SCORE ? 2 : 1;
    if (n < min) {
      d.error =
          (n == 0 ? "empty document" : "document has " + n + " token")
              + (task == Task.SCORE
                  ? ": a loss needs at least 2 tokens"
                  : ": " + task.label + " needs at least 1 token");
      return false;
    }
    if (n > s.maxTokens) {
      d.error =
          "document has "
              + n
              + " tokens, more than "
              + MambaSettings.MAX_TOKENS.key()
              + " = "
              + s.maxTokens;
      return false;
    }
    int V = c.vocabSize;
    for (int i = 0; i < n; i++) {
      int id = d.ids[i];
      if (id < 0 || id >= V) {
        d.error =
            "token id " + id + " at position " + i + " is outside the vocabulary [0, " + V + ")";
        return false;
      }
    }
    return true;
  }

  private void run(List<Doc> docs, Task task) {
    List<Doc> todo = new ArrayList<>();
    for (Doc d : docs) {
      if (!check(d, task)) {
        continue;
      }
      if (d.tokens() > s.pieceLength) {
        try {
          streamed(d, task);
        } catch (RuntimeException e) {
          d.error = message(e);
        }
      } else {
        todo.add(d);
      }
    }
    int[] lengths = new int[todo.size()];
    for (int i = 0; i < lengths.length; i++) {
      lengths[i] = todo.get(i).tokens();
    }
    for (int[] group : plan(lengths, s.batchSize, s.batchTokens, s.maxPadding)) {
      Doc[] batch = new Doc[group.length];
      for (int i = 0; i < group.length; i++) {
        batch[i] = todo.get(group[i]);
      }
      try {
        batched(batch, task);
      } catch (RuntimeException e) {
        if (batch.length == 1) {
          batch[0].error = message(e);
          continue;
        }
        for (Doc d : batch) { // find the one that fails
          try {
            batched(new Doc[] {d}, task);
          } catch (RuntimeException e1) {
            d.error = message(e1);
          }
        }
      }
    }
  }

  /**
   * Groups documents for batched forwards: indices sorted by length (longest first), each group at
   * most {@code maxDocs} documents, at most {@code maxTokens} positions counting the padding (group
   * size × its longest length; a single document longer than that is a group of its own), and at
   * most a {@code maxPadding} fraction of those positions padding. The last bound matters for large
   * models, where a forward's fixed cost is small next to its per-position cost, so that padding
   * costs about what it pads; small models gain most from batching and find near-equal lengths in a
   * window of rows.
   */
  public static List<int[]> plan(int[] lengths, int maxDocs, int maxTokens, double maxPadding) {
    Integer[] order = new Integer[lengths.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    Arrays.sort(order, (a, b) -> Integer.compare(lengths[b], lengths[a]));
    List<int[]> groups = new ArrayList<>();
    int i = 0;
    while (i < order.length) {
      int longest = lengths[order[i]];
      int n = 1;
      long padding = 0;
      while (i + n < order.length && n < maxDocs && (long) (n + 1) * longest <= maxTokens) {
        long pad = padding + longest - lengths[order[i + n]];
        if (pad > maxPadding * (n + 1) * longest) {
          break;
        }
        padding = pad;
        n++;
      }
      int[] g = new int[n];
      for (int j = 0; j < n; j++) {
        g[j] = order[i + j];
      }
      groups.add(g);
      i += n;
    }
    return groups;
  }

  /** One forward over B documents right-padded to the longest (L). */
  private void batched(Doc[] batch, Task task) {
    int B = batch.length, D = c.hiddenSize;
    int L = 0;
    for (Doc d : batch) {
      L = Math.max(L, d.tokens());
    }
    int[] ids = new int[B * L];
    Arrays.fill(ids, padId);
    for (int b = 0; b < B; b++) {
      System.arraycopy(batch[b].ids, 0, ids, b * L, batch[b].tokens());
    }
    model.forward(ws, ids, B, L, null, null);
    for (int b = 0; b < B; b++) {
      Doc d = batch[b];
      int n = d.tokens();
      if (task == Task.SCORE) {
        float[] lp = s.logprobs ? new float[n - 1] : null;
        double sum =
            Scoring.crossEntropySum(model, ws, ws.hidden, b * L, ids, b * L + 1, n - 1, lp, 0);
        d.loss = sum / (n - 1);
        d.logprobs = lp;
      } else {
        float[] e = new float[D];
        if (s.pooling.equals("last")) {
          System.arraycopy(ws.hidden, (b * L + n - 1) * D, e, 0, D);
        } else {
          double[] acc = new double[D];
          addRows(acc, ws.hidden, b * L, n, D);
          for (int k = 0; k < D; k++) {
            e[k] = (float) (acc[k] / n);
          }
        }
        d.embedding = e;
      }
    }
  }

  /** A long document alone, in pieces, the state carried (StreamingScorer's recurrence). */
  private void streamed(Doc d, Task task) {
    int P = s.pieceLength, D = c.hiddenSize, n = d.tokens();
    int[] ids = d.ids;
    MambaState state = new MambaState(c, 1);
    float[] last = new float[D]; // final hidden of the previous piece's last token
    int[] piece = new int[P];
    float[] lp = task == Task.SCORE && s.logprobs ? new float[n - 1] : null;
    double[] acc = task == Task.EMBED ? new double[D] : null;
    double sum = 0;
    for (int p = 0; p < n; p += P) {
      int m = Math.min(P, n - p);
      System.arraycopy(ids, p, piece, 0, m);
      model.forward(ws, piece, 1, m, state, null);
      if (task == Task.SCORE) {
        if (p > 0) { // the previous piece's last position predicts this piece's first token
          sum += Scoring.crossEntropySum(model, ws, last, 0, ids, p, 1, lp, p - 1);
        }
        if (m > 1) {
          sum += Scoring.crossEntropySum(model, ws, ws.hidden, 0, ids, p + 1, m - 1, lp, p);
        }
        System.arraycopy(ws.hidden, (m - 1) * D, last, 0, D);
      } else {
        if (acc != null && s.pooling.equals("mean")) {
          addRows(acc, ws.hidden, 0, m, D);
        }
        System.arraycopy(ws.hidden, (m - 1) * D, last, 0, D);
      }
    }
    if (task == Task.SCORE) {
      d.loss = sum / (n - 1);
      d.logprobs = lp;
    } else {
      float[] e = new float[D];
      for (int k = 0; k < D; k++) {
        e[k] = s.pooling.equals("last") ? last[k] : (float) (acc[k] / n);
      }
      d.embedding = e;
    }
  }

  /** acc (D) += Σ rows [row0, row0+n) of h (·, D). */
  private static void addRows(double[] acc, float[] h, int row0, int n, int D) {
    for (int r = 0; r < n; r++) {
      int off = (row0 + r) * D;
      for (int k = 0; k < D; k++) {
        acc[k] += h[off + k];
      }
    }
  }

  static String message(Throwable e) {
    String m = e.getMessage();
    return m == null ? e.toString() : m;
  }
}
