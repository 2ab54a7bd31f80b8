package org.mambaspark.model;

import java.util.Arrays;
import java.util.function.IntConsumer;
import org.mambaspark.ops.Parallel;

/**
 * Autoregressive generation for one sequence, or several decoded together, on a {@link ModelRunner}
 * (the CPU engine or a GPU): the prompt is prefilled through the parallel forward (in pieces of at
 * most {@code piece} tokens, state carried), then each new token is one recurrent step, O(1) in the
 * length so far (HF's generate with its recurrent cache). Not thread-safe: one Generator per
 * thread; the runner is shared.
 */
public final class Generator {
  public static final int PREFILL_PIECE = 2048;

  private final ModelRunner runner;
  private final int piece;
  private final float[] logits;

  /** On the CPU engine. */
  public Generator(MambaModel model) {
    this(Backends.cpu().open(model), PREFILL_PIECE);
  }

  /**
   * @param runner the model on its backend
   * @param piece the longest prefill call (tokens)
   */
  public Generator(ModelRunner runner, int piece) {
    if (piece <= 0) {
      throw new IllegalArgumentException("the prefill piece must be positive, got " + piece);
    }
    this.runner = runner;
    this.piece = piece;
    this.logits = new float[runner.model().config.vocabSize];
  }

  /** Receives each new token of a row as it is chosen. */
  @FunctionalInterface
  public interface TokenSink {
    void accept(int row, int token);
  }

  /**
   * @param prompt at least one token id
   * @param onToken called with each new token as it is chosen (may be null)
   * @return the new tokens (the prompt not included), ending early after a stop token
   */
  public int[] generate(int[] prompt, SamplingParams params, IntConsumer onToken) {
    TokenSink sink = onToken == null ? null : (row, token) -> onToken.accept(token);
    return generate(new int[][] {prompt}, new SamplingParams[] {params}, sink)[0];
  }

  /**
   * Several sequences decoded together. Each prompt is prefilled on its own (B = 1, in pieces: the
   * prompts' lengths differ), then the rows still going take each recurrent step together (B =
   * rows), so that a step reads the weights once for all of them, which is what decoding is bound
   * by; a row that stops leaves the batch. Row r is {@code generate(prompts[r], params[r])} up to
   * the rounding of batched products (each row keeps its own sampler).
   *
   * @param prompts each at least one token id
   * @param params one per prompt
   * @param onToken called with (row, token) as each is chosen (may be null)
   * @return per row the new tokens, ending early after a stop token
   */
  public int[][] generate(int[][] prompts, SamplingParams[] params, TokenSink onToken) {
    int R = prompts.length;
    if (params.length != R) {
      throw new IllegalArgumentException(R + " prompts but " + params.length + " sampling params");
    }
    MambaConfig c = runner.model().config;
    int V = c.vocabSize;
    int[][] out = new int[R][];
    int[] count = new int[R];
    Sampler[] samplers = new Sampler[R];
    MambaState[] states = new MambaState[R];
    int[] live = new int[R];
    int nLive = 0;
    for (int r = 0; r < R; r++) {
      if (prompts[r].length == 0) {
        throw new IllegalArgumentException(
            "prompt " + r + " is empty: generation needs at least one token");
      }
      out[r] = new int[params[r].maxNewTokens];
      samplers[r] = new Sampler(params[r]);
      states[r] = new MambaState(c, 1);
      prefill(prompts[r], states[r]);
      if (choose(r, logits, 0, V, out, count, samplers, params, onToken)) {
        live[nLive++] = r;
      }
    }
    if (nLive == 0) {
      return result(out, count);
    }
    MambaState batch = gather(c, states, live, nLive);
    Arrays.fill(states, null); // the one-row states are in the batch now
    float[] stepLogits = new float[nLive * V];
    int n = nLive;
    return Parallel.decoding(
        () -> decode(out, count, live, n, batch, stepLogits, samplers, params, onToken));
  }

  /** The token-by-token loop over the live rows' batch state, until every row has stopped. */
  private int[][] decode(
      int[][] out,
      int[] count,
      int[] live,
      int nLive,
      MambaState batch,
      float[] stepLogits,
      Sampler[] samplers,
      SamplingParams[] params,
      TokenSink onToken) {
    MambaConfig c = runner.model().config;
    int V = c.vocabSize;
    int[] step = new int[nLive];
    int[] keep = new int[nLive];
    int[] next = new int[nLive];
    while (true) {
      for (int i = 0; i < nLive; i++) {
        step[i] = out[live[i]][count[live[i]] - 1];
      }
      boolean greedy = true; // every live row takes the argmax of its unmasked logits
      for (int i = 0; i < nLive && greedy; i++) {
        greedy = params[live[i]].isGreedy() && !masksStops(params[live[i]], count[live[i]]);
      }
      int kept = 0;
      if (greedy) {
        runner.forwardLastArgmax(next, stepLogits, step, nLive, 1, batch);
        for (int i = 0; i < nLive; i++) {
          if (accept(live[i], next[i], out, count, params, onToken)) {
            keep[kept++] = i;
          }
        }
      } else {
        runner.forwardLastLogits(stepLogits, step, nLive, 1, batch);
        for (int i = 0; i < nLive; i++) {
          if (choose(live[i], stepLogits, i * V, V, out, count, samplers, params, onToken)) {
            keep[kept++] = i;
          }
        }
      }
      if (kept == 0) {
        return result(out, count);
      }
      if (kept < nLive) {
        batch = compact(c, batch, keep, kept);
        for (int i = 0; i < kept; i++) {
          live[i] = live[keep[i]];
        }
        nLive = kept;
        step = new int[nLive];
      }
    }
  }

  /** Each row's tokens, cut to the count chosen. */
  private static int[][] result(int[][] out, int[] count) {
    int[][] result = new int[out.length][];
    for (int r = 0; r < out.length; r++) {
      result[r] = Arrays.copyOf(out[r], count[r]);
    }
    return result;
  }

  /** The prompt through the parallel forward in pieces; leaves the last position's logits. */
  private void prefill(int[] prompt, MambaState state) {
    int[] chunk = new int[Math.min(prompt.length, piece)];
    for (int p = 0; p < prompt.length; p += piece) {
      int n = Math.min(piece, prompt.length - p);
      if (chunk.length != n) {
        chunk = new int[n];
      }
      System.arraycopy(prompt, p, chunk, 0, n);
      runner.forwardLastLogits(logits, chunk, 1, n, state); // the last piece's logits are kept
    }
  }

  /** Samples row r's next token from logits[off, off+V); whether the row goes on. */
  private static boolean choose(
      int r,
      float[] logits,
      int off,
      int V,
      int[][] out,
      int[] count,
      Sampler[] samplers,
      SamplingParams[] params,
      TokenSink onToken) {
    if (params[r].maxNewTokens == 0) {
      return false;
    }
    if (masksStops(params[r], count[r])) {
      for (int s : params[r].stopTokens) {
        if (s >= 0 && s < V) {
          logits[off + s] = Float.NEGATIVE_INFINITY;
        }
      }
    }
    return accept(r, samplers[r].sample(logits, off, V), out, count, params, onToken);
  }

  /** Whether row r's stop tokens are still barred (fewer than its minimum new tokens so far). */
  private static boolean masksStops(SamplingParams p, int count) {
    return count < p.minNewTokens && p.stopTokens.length > 0;
  }

  /** Records token next for row r; whether the row goes on. */
  private static boolean accept(
      int r, int next, int[][] out, int[] count, SamplingParams[] params, TokenSink onToken) {
    out[r][count[r]++] = next;
    if (onToken != null) {
      onToken.accept(r, next);
    }
    return !params[r].isStop(next) && count[r] < params[r].maxNewTokens;
  }

  /** The one-row states of rows live[0..n) as one batch state, row i from live[i]. */
  private static MambaState gather(MambaConfig c, MambaState[] one, int[] live, int n) {
    if (n == 1) {
      return one[live[0]]; // as it is: on a GPU it stays where the prefill left it
    }
    MambaState b = new MambaState(c, n);
    for (int i = 0; i < n; i++) {
      for (int l = 0; l < c.numLayers; l++) {
        float[] conv = one[live[i]].conv(l);
        float[] ssm = one[live[i]].ssm(l);
        System.arraycopy(conv, 0, b.conv(l), i * conv.length, conv.length);
        System.arraycopy(ssm, 0, b.ssm(l), i * ssm.length, ssm.length);
      }
    }
    return b;
  }

  /** Rows keep[0..n) of a batch state, in that order (a row's slices are contiguous). */
  private static MambaState compact(MambaConfig c, MambaState s, int[] keep, int n) {
    MambaState b = new MambaState(c, n);
    for (int l = 0; l < c.numLayers; l++) {
      float[] sc = s.conv(l);
      float[] ss = s.ssm(l);
      int conv = sc.length / s.batch;
      int ssm = ss.length / s.batch;
      for (int i = 0; i < n; i++) {
        System.arraycopy(sc, keep[i] * conv, b.conv(l), i * conv, conv);
        System.arraycopy(ss, keep[i] * ssm, b.ssm(l), i * ssm, ssm);
      }
    }
    return b;
  }
}
