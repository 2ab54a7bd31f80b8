package org.mambaspark.model;

import java.util.Arrays;

/**
 * How to pick each next token. temperature 0 is greedy (argmax; ties go to the lowest id, as
 * torch.argmax); otherwise logits are divided by the temperature, cut to the top k (0 = no cut),
 * then to the smallest set whose probability reaches top p (1 = no cut), as HF's logits warpers do
 * in that order, and sampled with a generator seeded by seed.
 */
public final class SamplingParams {
  public final int maxNewTokens;
  public final float temperature;
  public final int topK;
  public final float topP;
  public final long seed;

  /** Generation stops after emitting any of these (the stop token is included in the output). */
  public final int[] stopTokens;

  /**
   * The stop tokens cannot be chosen before this many new tokens (HF's {@code min_new_tokens}:
   * their logits are -∞ until then).
   */
  public final int minNewTokens;

  public SamplingParams(
      int maxNewTokens, float temperature, int topK, float topP, long seed, int[] stopTokens) {
    this(maxNewTokens, temperature, topK, topP, seed, stopTokens, 0);
  }

  private SamplingParams(
      int maxNewTokens,
      float temperature,
      int topK,
      float topP,
      long seed,
      int[] stopTokens,
      int minNewTokens) {
    if (maxNewTokens < 0) {
      throw new IllegalArgumentException("max new tokens must be >= 0, got " + maxNewTokens);
    }
    if (!(temperature >= 0) || Float.isInfinite(temperature)) {
      throw new IllegalArgumentException(
          "temperature must be a finite number >= 0, got " + temperature);
    }
    if (topK < 0) {
      throw new IllegalArgumentException("top-k must be >= 0, got " + topK);
    }
    if (!(topP > 0 && topP <= 1)) {
      throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
    }
    this.maxNewTokens = maxNewTokens;
    this.temperature = temperature;
    this.topK = topK;
    this.topP = topP;
    this.seed = seed;
    this.stopTokens = stopTokens == null ? new int[0] : stopTokens.clone();
    if (minNewTokens < 0) {
      throw new IllegalArgumentException("min new tokens must be >= 0, got " + minNewTokens);
    }
    this.minNewTokens = minNewTokens;
  }

  /** These parameters with the stop tokens held off for the first {@code n} new tokens. */
  public SamplingParams withMinNewTokens(int n) {
    return new SamplingParams(maxNewTokens, temperature, topK, topP, seed, stopTokens, n);
  }

  public static SamplingParams greedy(int maxNewTokens) {
    return new SamplingParams(maxNewTokens, 0f, 0, 1f, 0L, null);
  }

  public boolean isGreedy() {
    return temperature == 0f;
  }

  boolean isStop(int token) {
    for (int s : stopTokens) {
      if (s == token) {
        return true;
      }
    }
    return false;
  }

  @Override
  public String toString() {
    return "SamplingParams{max="
        + maxNewTokens
        + ", T="
        + temperature
        + ", topK="
        + topK
        + ", topP="
        + topP
        + ", seed="
        + seed
        + ", stop="
        + Arrays.toString(stopTokens)
        + (minNewTokens > 0 ? ", minNew=" + minNewTokens : "")
        + "}";
  }
}
