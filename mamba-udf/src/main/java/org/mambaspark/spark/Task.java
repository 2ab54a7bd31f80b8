package org.mambaspark.spark;

import java.util.Locale;

/** What a job, stage or function computes for each document. */
public enum Task {
  /** Mean next-token cross-entropy, perplexity, token count (and per-token log-probs). */
  SCORE("score"),
  /** The pooled final hidden state. */
  EMBED("embed"),
  /** A continuation. */
  GENERATE("generate");

  public final String label;

  Task(String name) {
    this.label = name;
  }

  public static Task of(String name) {
    for (Task t : values()) {
      if (t.label.equals(name.toLowerCase(Locale.ROOT))) {
        return t;
      }
    }
    throw new IllegalArgumentException(
        "unknown task '" + name + "' (known: score, embed, generate)");
  }
}
