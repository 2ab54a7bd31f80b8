package org.mambaspark.batch;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;
import org.mambaspark.model.Backends;
import org.mambaspark.model.Generator;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.ModelRunner;
import org.mambaspark.model.SamplingParams;
import org.mambaspark.model.StreamingScorer;
import org.mambaspark.model.TokenIds;

/**
 * Runs a window of documents through the engine: the partition-level work of the score, embed and
 * generate jobs, with no Spark in it (the Spark glue hands it token ids and reads back results).
 * The engine is a {@link ModelRunner}: the CPU, or the GPU Spark gave the task ({@link
 * org.mambaspark.model.Backends#forGpuAddress}); batched scoring runs wholly on it (forward,
 * lm_head, log-softmax), the other tasks take its hidden states or logits.
 *
 * <p>Batching: documents up to {@link Options#pieceLength} tokens are sorted by length and grouped,
 * at most {@code batchSize} documents and {@code batchTokens} positions (B·L, L the longest in the
 * group) per forward, the shorter ones right-padded. Padding cannot change a document's result: the
 * model is causal (the conv looks back, the scan runs forward), so positions before the padding
 * never see it, and the padded positions are not read. The other documents change only the
 * rounding: a forward of a handful of positions in all (below 48 for the wide matmuls: a short
 * document alone, as a UDF call runs it) takes the matmuls' dot products, a larger one the blocked
 * GEMM, and the two sum in different orders (BatchInvarianceTest bounds the difference). Among
 * forwards of 48 positions or more a document's numbers do not depend on its batch-mates: the GEMM
 * computes every row the same way wherever it falls.
 *
 * <p>Streaming: a longer document runs alone, in pieces of {@code pieceLength} tokens with the
 * recurrent state (h and the last K-1 conv inputs) carried from piece to piece, as {@link
 * org.mambaspark.model.StreamingScorer} does: the same result as one pass, memory bounded by the
 * piece.
 *
 * <p>Errors: a document the engine rejects gets {@link Doc#error}; when a batched forward fails,
 * its documents are retried one by one so that only the bad one carries the error.
 *
 * <p>One per task thread (it owns buffers); the model and its runner are shared.
 */
public final class DocumentRunner {
  private final ModelRunner runner;
  private final MambaModel model;
  private final MambaConfig c;
  private final Options s;
  private final int padId;
  private float[] hidden = new float[0]; // (B·L, D) the runner's final hidden states
  private float[] logprobs = new float[0]; // (B, L-1)
  private Progress progress = (documents, tokens) -> {};

  /** Told of documents as their results (or errors) become final: a running task's progress. */
  public interface Progress {
    void done(int documents, long tokens);
  }

  /**
   * How documents are batched and what the work asks for: the {@code spark.mamba.*} settings of the
   * same names, as the Spark side reads them.
   */
  public static final class Options {
    public final int batchSize;
    public final int batchTokens;
    public final double maxPadding;
    public final int pieceLength;
    public final int maxTokens;
    public final boolean logprobs;
    public final String pooling; // "mean" | "last"
    public final int maxNewTokens;
    public final float temperature;
    public final int topK;
    public final float topP;
    public final long seed;
    public final int[] stopIds; // null = the model's eos

    /** The setting that limits a document's length, named in the error of a longer one. */
    public final String maxTokensSetting;

    public Options(
        int batchSize,
        int batchTokens,
        double maxPadding,
        int pieceLength,
        int maxTokens,
        String maxTokensSetting,
        boolean logprobs,
        String pooling,
        int maxNewTokens,
        float temperature,
        int topK,
        float topP,
        long seed,
        int[] stopIds) {
      this.batchSize = batchSize;
      this.batchTokens = batchTokens;
      this.maxPadding = maxPadding;
      this.pieceLength = pieceLength;
      this.maxTokens = maxTokens;
      this.maxTokensSetting = maxTokensSetting;
      this.logprobs = logprobs;
      this.pooling = pooling;
      this.maxNewTokens = maxNewTokens;
      this.temperature = temperature;
      this.topK = topK;
      this.topP = topP;
      this.seed = seed;
      this.stopIds = stopIds == null ? null : stopIds.clone();
    }
  }

  /** The three kinds of work. */
  enum Work {
    SCORE("score"),
    EMBED("embed"),
    GENERATE("generate");

    final String label;

    Work(String label) {
      this.label = label;
    }
  }

  /** Documents through the runner (the backend of the runner's choice). */
  public DocumentRunner(ModelRunner runner, Options settings) {
    this.runner = runner;
    this.model = runner.model();
    this.c = model.config;
    this.s = settings;
    this.padId = c.padTokenId >= 0 && c.padTokenId < c.vocabSize ? c.padTokenId : 0;
  }

  /** Documents through the engine on the CPU. */
  public DocumentRunner(MambaModel model, Options settings) {
    this(Backends.cpu().open(model), settings);
  }

  /** Reports every document once, when its result or error is final, to {@code p}. */
  public DocumentRunner onProgress(Progress p) {
    this.progress = p;
    return this;
  }

  private void done(List<Doc> docs) {
    long tokens = 0;
    for (Doc d : docs) {
      tokens += d.tokens();
    }
    progress.done(docs.size(), tokens);
  }

  /** score: sets each good document's {@link Doc#loss} (and logprobs when asked), or its error. */
  public void score(List<Doc> docs) {
    run(docs, Work.SCORE);
  }

  /** embed: sets each good document's {@link Doc#embedding} ({@code pooling}), or its error. */
  public void embed(List<Doc> docs) {
    run(docs, Work.EMBED);
  }

  /** generate: sets each good document's {@link Doc#generated}, or its error. */
  public void generate(List<Doc> docs) {
    generate(docs, s.maxNewTokens);
  }

  /**
   * generate, with at most {@code maxNewTokens} new tokens per document: up to {@code batchSize}
   * documents decode together ({@link Generator#generate(int[][], SamplingParams[],
   * Generator.TokenSink)}); when a batch fails, its documents run one by one, so that only the one
   * at fault gets the error.
   */
  public void generate(List<Doc> docs, int maxNewTokens) {
    List<Doc> todo = new ArrayList<>();
    List<Doc> rejected = new ArrayList<>();
    for (Doc d : docs) {
      (check(d, Work.GENERATE) ? todo : rejected).add(d);
    }
    done(rejected);
    Generator g = new Generator(runner, s.pieceLength);
    for (int i = 0; i < todo.size(); i += s.batchSize) {
      List<Doc> batch = todo.subList(i, Math.min(todo.size(), i + s.batchSize));
      isolated(batch, b -> generateTogether(g, b, maxNewTokens));
      done(batch);
    }
  }

  /** Decodes the batch's documents together; sets their results only when all succeed. */
  private void generateTogether(Generator g, List<Doc> batch, int maxNewTokens) {
    int[][] prompts = new int[batch.size()][];
    SamplingParams[] params = new SamplingParams[batch.size()];
    for (int k = 0; k < prompts.length; k++) {
      prompts[k] = batch.get(k).ids;
      params[k] = sampling(prompts[k], maxNewTokens);
    }
    int[][] out = g.generate(prompts, params, null);
    for (int k = 0; k < prompts.length; k++) {
      batch.get(k).generated = out[k];
    }
  }

  /**
   * Runs the batch; when it fails, each document alone, so that only the one at fault gets the
   * error (the others their results).
   */
  private static void isolated(List<Doc> batch, Consumer<List<Doc>> run) {
    try {
      run.accept(batch);
    } catch (RuntimeException e) {
      if (batch.size() == 1) {
        batch.get(0).error = message(e);
        return;
      }
      for (Doc d : batch) {
        try {
          run.accept(List.of(d));
        } catch (RuntimeException e1) {
          d.error = message(e1);
        }
      }
    }
  }

  /** The sampling of one prompt: the configured seed mixed with the prompt, so retries agree. */
  public SamplingParams sampling(int[] prompt, int maxNewTokens) {
    int[] stops = stopIds();
    long seed = s.seed + 0x9E3779B97F4A7C15L * Arrays.hashCode(prompt);
    return new SamplingParams(maxNewTokens, s.temperature, s.topK, s.topP, seed, stops);
  }

  /** The ids that end a continuation: the configured ones, else the model's eos. */
  public int[] stopIds() {
    return s.stopIds != null ? s.stopIds.clone() : new int[] {c.eosTokenId};
  }

  /** How many of the generated ids make the text: all but a final stop token. */
  public int textLength(int[] generated) {
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
  boolean check(Doc d, Work task) {
    if (!d.ok()) {
      return false;
    }
    int n = d.tokens();
    int min = task == Work.SCORE ? 2 : 1;
    if (n < min) {
      d.error =
          (n == 0 ? "empty document" : "document has " + n + " token")
              + (task == Work.SCORE
                  ? ": a loss needs at least 2 tokens"
                  : ": " + task.label + " needs at least 1 token");
      return false;
    }
    if (n > s.maxTokens) {
      d.error =
          "document has " + n + " tokens, more than " + s.maxTokensSetting + " = " + s.maxTokens;
      return false;
    }
    for (int i = 0; i < n; i++) {
      String why = TokenIds.outside(d.ids[i], i, c.vocabSize);
      if (why != null) {
        d.error = why;
        return false;
      }
    }
    return true;
  }

  private void run(List<Doc> docs, Work task) {
    List<Doc> todo = new ArrayList<>();
    List<Doc> rejected = new ArrayList<>();
    for (Doc d : docs) {
      if (!check(d, task)) {
        rejected.add(d);
      } else if (d.tokens() <= s.pieceLength) {
        todo.add(d);
      }
    }
    done(rejected);
    for (Doc d : docs) {
      if (d.ok() && d.tokens() > s.pieceLength) {
        try {
          streamed(d, task);
        } catch (RuntimeException e) {
          d.error = message(e);
        }
        done(List.of(d));
      }
    }
    int[] lengths = new int[todo.size()];
    for (int i = 0; i < lengths.length; i++) {
      lengths[i] = todo.get(i).tokens();
    }
    for (int[] group : plan(lengths, s.batchSize, s.batchTokens, s.maxPadding)) {
      List<Doc> batch = new ArrayList<>(group.length);
      for (int i : group) {
        batch.add(todo.get(i));
      }
      isolated(batch, b -> batched(b.toArray(new Doc[0]), task));
      done(batch);
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
  private void batched(Doc[] batch, Work task) {
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
    if (task == Work.SCORE) {
      // every position's log-probability on the runner; a document's are the first n-1 of its row,
      // and its loss is their mean (summed in double from the floats, as the streamed path does)
      logprobs = grow(logprobs, B * (L - 1));
      float[] lp = logprobs;
      runner.nextTokenLossSum(lp, ids, B, L);
      for (int b = 0; b < B; b++) {
        Doc d = batch[b];
        int n = d.tokens(), off = b * (L - 1);
        double sum = 0;
        for (int t = 0; t < n - 1; t++) {
          sum -= lp[off + t];
        }
        d.loss = sum / (n - 1);
        d.logprobs = s.logprobs ? Arrays.copyOfRange(lp, off, off + n - 1) : null;
      }
      return;
    }
    hidden = grow(hidden, B * L * D);
    float[] h = hidden;
    runner.forward(h, ids, B, L, null);
    for (int b = 0; b < B; b++) {
      Doc d = batch[b];
      int n = d.tokens();
      float[] e = new float[D];
      if (s.pooling.equals("last")) {
        System.arraycopy(h, (b * L + n - 1) * D, e, 0, D);
      } else {
        double[] acc = new double[D];
        addRows(acc, h, b * L, n, D);
        for (int k = 0; k < D; k++) {
          e[k] = (float) (acc[k] / n);
        }
      }
      d.embedding = e;
    }
  }

  private static float[] grow(float[] a, int n) {
    return a.length >= n ? a : new float[n];
  }

  /** A long document alone, in pieces, the state carried ({@link StreamingScorer}). */
  private void streamed(Doc d, Work task) {
    int D = c.hiddenSize, n = d.tokens();
    boolean mean = task == Work.EMBED && s.pooling.equals("mean");
    double[] acc = mean ? new double[D] : null;
    float[] lp = task == Work.SCORE && s.logprobs ? new float[n - 1] : null;
    StreamingScorer scorer =
        new StreamingScorer(
            runner,
            s.pieceLength,
            task == Work.SCORE,
            lp,
            mean ? (h, rows) -> addRows(acc, h, 0, rows, D) : null);
    scorer.accept(d.ids, 0, n);
    if (task == Work.SCORE) {
      d.loss = scorer.meanLoss();
      d.logprobs = lp;
    } else {
      float[] last = scorer.lastHidden();
      float[] e = new float[D];
      for (int k = 0; k < D; k++) {
        e[k] = mean ? (float) (acc[k] / n) : last[k];
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

  public static String message(Throwable e) {
    String m = e.getMessage();
    return m == null ? e.toString() : m;
  }
}
