package org.mambaspark.tokenizer;

/**
 * Text ↔ token ids for a model.
 *
 * <p>Why this shape: the engine works on token ids only, and decides for itself about BOS/EOS,
 * context length and batching. So {@link #encode} adds no special tokens and never truncates or
 * pads, and {@link #decode} keeps whatever special tokens the ids contain (generation stops at EOS
 * before decoding).
 *
 * <p>Thread safety: every implementation may be shared by all task threads of a JVM (Spark runs
 * many tasks per executor); {@link #encode} and {@link #decode} may be called concurrently. {@link
 * #close} frees native memory where there is any ({@link HfTokenizer}): it waits for the calls in
 * flight, and later calls on that tokenizer fail with {@link IllegalStateException}.
 */
public interface Tokenizer extends AutoCloseable {
  /** The ids of {@code text}: no special tokens added, no truncation, no padding. */
  int[] encode(String text);

  /**
   * The text of {@code ids[from, to)}. Negative ids are rejected ({@link IllegalArgumentException}
   * naming id and position); ids the tokenizer does not know ({@code >= vocabSize()}, e.g. the
   * padding rows of a model whose embedding is rounded up) are skipped. Byte sequences that are not
   * valid UTF-8 (a cut in the middle of a character) decode to U+FFFD.
   */
  String decode(int[] ids, int from, int to);

  default String decode(int[] ids) {
    return decode(ids, 0, ids.length);
  }

  /**
   * One more than the largest id the tokenizer can produce or decode. It may be smaller than the
   * model's {@code vocab_size}, which checkpoints often round up (GPT-NeoX: 50277 tokens, Mamba's
   * embedding 50280).
   */
  int vocabSize();

  /** What it is, for logs. */
  String describe();

  /** Frees native resources, if any; idempotent. */
  @Override
  default void close() {}
}
