package org.mambaspark.tokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Finds a model's tokenizer: {@code tokenizer.json} → {@link HfTokenizer}; otherwise a {@code
 * tokenizer_config.json} whose {@code tokenizer_class} is {@code "ByteTokenizer"} (this project's
 * marker for byte-level models) → {@link ByteTokenizer}; otherwise none (the caller passes token
 * ids).
 */
public final class Tokenizers {
  public static final String TOKENIZER_JSON = "tokenizer.json";
  public static final String TOKENIZER_CONFIG = "tokenizer_config.json";
  private static final Pattern BYTE_MARKER =
      Pattern.compile("\"tokenizer_class\"\\s*:\\s*\"ByteTokenizer\"");

  private Tokenizers() {}

  public static Optional<Tokenizer> forModel(Path modelDir) {
    Path hf = modelDir.resolve(TOKENIZER_JSON);
    if (Files.isRegularFile(hf)) {
      return Optional.of(HfTokenizer.load(hf));
    }
    Path cfg = modelDir.resolve(TOKENIZER_CONFIG);
    if (Files.isRegularFile(cfg)) {
      try {
        if (BYTE_MARKER.matcher(Files.readString(cfg, StandardCharsets.UTF_8)).find()) {
          return Optional.of(ByteTokenizer.INSTANCE);
        }
      } catch (IOException e) {
        throw new UncheckedIOException(cfg + ": cannot read", e);
      }
    }
    return Optional.empty();
  }

  /** "bytes" → {@link ByteTokenizer}; a path to a tokenizer.json → {@link HfTokenizer}. */
  public static Tokenizer byName(String name) {
    if (name.equals("bytes")) {
      return ByteTokenizer.INSTANCE;
    }
    return HfTokenizer.load(Path.of(name));
  }

  /**
   * Marks modelDir as a byte-level model (tokenizer_config.json), so {@link #forModel} finds its
   * tokenizer.
   */
  public static void writeByteTokenizerMarker(Path modelDir) throws IOException {
    Files.writeString(
        modelDir.resolve(TOKENIZER_CONFIG),
        "{\n  \"tokenizer_class\": \"ByteTokenizer\",\n  \"comment\": \"one token per UTF-8 byte (mamba-spark)\"\n}\n",
        StandardCharsets.UTF_8);
  }
}
