package org.mambaspark.model;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks a token from a row of logits per {@link SamplingParams}; one per sequence (it holds the
 * seeded generator).
 */
public final class Sampler {
  private final SamplingParams p;
  private final SplittableRandom random;
  private float[] probs = new float[0];
  private Integer[] order = new Integer[0];

  public Sampler(SamplingParams params) {
    this.p = params;
    this.random = new SplittableRandom(params.seed);
  }

  /** A token id for logits[off, off+V). */
  public int sample(float[] logits, int off, int V) {
    if (p.isGreedy()) {
      return argmax(logits, off, V);
    }
    if (probs.length < V) {
      probs = new float[V];
    }
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < V; i++) {
      max = Math.max(max, logits[off + i]);
    }
    // softmax(logits / T), with the max subtracted for range
    double sum = 0;
    for (int i = 0; i < V; i++) {
      float e = (float) Math.exp((logits[off + i] - max) / p.temperature);
      probs[i] = e;
      sum += e;
    }
    boolean cut = (p.topK > 0 && p.topK < V) || p.topP < 1f;
    if (!cut) {
      return draw(probs, V, sum);
    }
    // sort ids by probability, descending (ties: lower id first, stable)
    if (order.length < V) {
      order = new Integer[V];
    }
    for (int i = 0; i < V; i++) {
      order[i] = i;
    }
    float[] pr = probs;
    Arrays.sort(order, 0, V, (a, b) -> Float.compare(pr[b], pr[a]));
    int keep = p.topK > 0 ? Math.min(p.topK, V) : V;
    if (p.topP < 1f) {
      double kept = 0;
      for (int i = 0; i < keep; i++) {
        kept += pr[order[i]];
      }
      // HF TopPLogitsWarper: keep the smallest prefix whose mass reaches top_p (at least one token)
      double cum = 0;
      int n = 0;
      while (n < keep) {
        cum += pr[order[n]] / kept;
        n++;
        if (cum >= p.topP) {
          break;
        }
      }
      keep = n;
    }
    double total = 0;
    for (int i = 0; i < keep; i++) {
      total += pr[order[i]];
    }
    double r = random.nextDouble() * total;
    for (int i = 0; i < keep; i++) {
      r -= pr[order[i]];
      if (r < 0) {
        return order[i];
      }
    }
    return order[keep - 1];
  }

  private int draw(float[] pr, int V, double sum) {
    double r = random.nextDouble() * sum;
    int last = 0;
    for (int i = 0; i < V; i++) {
      if (pr[i] > 0) {
        last = i;
        r -= pr[i];
        if (r < 0) {
          return i;
        }
      }
    }
    return last;
  }

  /** The first index of the largest of x[off, off+n) (a NaN is never larger). */
  public static int argmax(float[] x, int off, int n) {
    int best = 0;
    float bv = x[off];
    for (int i = 1; i < n; i++) {
      if (x[off + i] > bv) {
        bv = x[off + i];
        best = i;
      }
    }
    return best;
  }
}
