package org.mambaspark.tokenizer;

/**
 * Text ↔ token ids for a model. Encoding adds no special tokens and never truncates or pads: the
 * caller decides about BOS/EOS and length. Implementations are safe to share between threads (Spark
 * task threads share one per executor JVM).
 */
public interface Tokenizer {
  int[] encode(String text);

  String decode(int[] ids, int from, int to);

  default String decode(int[] ids) {
    return decode(ids, 0, ids.length);
  }

  /** What it is, for logs. */
  String describe();
}
