package org.mambaspark.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A Hugging Face {@code tokenizer.json} (the GPT-NeoX byte-level BPE of the published Mamba
 * checkpoints) through DJL's binding of the Rust tokenizers library, whose native library ships in
 * the jar (no network). DJL's defaults would add special tokens and silently truncate at 512
 * tokens: both are switched off. The Rust tokenizer is immutable after loading and safe to call
 * from several threads.
 */
public final class HfTokenizer implements Tokenizer {
  private final HuggingFaceTokenizer tokenizer;
  private final Path file;

  private HfTokenizer(HuggingFaceTokenizer tokenizer, Path file) {
    this.tokenizer = tokenizer;
    this.file = file;
  }

  public static HfTokenizer load(Path tokenizerJson) {
    if (!Files.isRegularFile(tokenizerJson)) {
      throw new IllegalArgumentException(tokenizerJson + ": no such tokenizer file");
    }
    try {
      HuggingFaceTokenizer t =
          HuggingFaceTokenizer.builder()
              .optTokenizerPath(tokenizerJson)
              .optAddSpecialTokens(false)
              .optTruncation(false)
              .optPadding(false)
              .build();
      return new HfTokenizer(t, tokenizerJson);
    } catch (IOException | RuntimeException e) {
      throw new IllegalArgumentException(
          tokenizerJson + ": cannot load the tokenizer: " + e.getMessage(), e);
    }
  }

  @Override
  public int[] encode(String text) {
    long[] ids = tokenizer.encode(text).getIds();
    int[] r = new int[ids.length];
    for (int i = 0; i < ids.length; i++) {
      r[i] = Math.toIntExact(ids[i]);
    }
    return r;
  }

  @Override
  public String decode(int[] ids, int from, int to) {
    long[] l = new long[to - from];
    for (int i = from; i < to; i++) {
      l[i - from] = ids[i];
    }
    return tokenizer.decode(l, false);
  }

  @Override
  public String describe() {
    return "Hugging Face tokenizer " + file;
  }
}
