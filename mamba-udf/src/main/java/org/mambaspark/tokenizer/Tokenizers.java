package org.mambaspark.tokenizer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Finds a model's tokenizer from the files in its directory, so that a model directory is
 * self-describing:
 *
 * <ol>
 *   <li>{@code tokenizer.json} (Hugging Face's format, as in {@code state-spaces/mamba-*-hf}) →
 *       {@link HfTokenizer};
 *   <li>else a {@code tokenizer_config.json} whose {@code "tokenizer_class"} is {@code
 *       "ByteTokenizer"} → {@link ByteTokenizer}. That value is this project's own marker for
 *       byte-level models (Hugging Face has no class of that name; {@link
 *       #writeByteTokenizerMarker} writes it);
 *   <li>else none: the model has no tokenizer, and callers pass token ids.
 * </ol>
 *
 * <p>A {@code tokenizer_config.json} naming another class without a {@code tokenizer.json} (a model
 * shipped with only a slow tokenizer's {@code vocab.json} and {@code merges.txt}) also gives none,
 * with a warning.
 *
 * <p>Each call loads a new tokenizer: callers that run per task keep one per JVM (they are
 * thread-safe) and close it when done.
 */
public final class Tokenizers {
  private static final Logger LOG = LoggerFactory.getLogger(Tokenizers.class);

  public static final String TOKENIZER_JSON = "tokenizer.json";
  public static final String TOKENIZER_CONFIG = "tokenizer_config.json";

  /** The {@code tokenizer_class} that marks a byte-level model. */
  public static final String BYTE_TOKENIZER_CLASS = "ByteTokenizer";

  /** The name {@link #byName} takes for {@link ByteTokenizer}. */
  public static final String BYTES = "bytes";

  private Tokenizers() {}

  /**
   * The tokenizer of the model in {@code modelDir}, or empty when it has none.
   *
   * @throws IllegalArgumentException naming the file, when {@code modelDir} is not a directory or a
   *     tokenizer file in it is unreadable or invalid
   */
  public static Optional<Tokenizer> forModel(Path modelDir) {
    if (!Files.isDirectory(modelDir)) {
      throw new IllegalArgumentException(modelDir + ": not a model directory");
    }
    Path hf = modelDir.resolve(TOKENIZER_JSON);
    if (Files.isRegularFile(hf)) {
      return Optional.of(HfTokenizer.load(hf));
    }
    Path cfg = modelDir.resolve(TOKENIZER_CONFIG);
    if (!Files.isRegularFile(cfg)) {
      return Optional.empty();
    }
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(Files.readString(cfg, StandardCharsets.UTF_8));
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException(cfg + ": not valid JSON: " + e.getOriginalMessage(), e);
    } catch (IOException e) {
      throw new IllegalArgumentException(cfg + ": cannot read: " + e, e);
    }
    String cls = root == null ? "" : root.path("tokenizer_class").asText("");
    if (cls.equals(BYTE_TOKENIZER_CLASS)) {
      return Optional.of(ByteTokenizer.INSTANCE);
    }
    LOG.warn(
        "{}: tokenizer_class \"{}\" but no {}: no tokenizer for this model (token ids only)",
        cfg,
        cls,
        TOKENIZER_JSON);
    return Optional.empty();
  }

  /**
   * A tokenizer by name: {@code "bytes"} → {@link ByteTokenizer}; a path to a tokenizer.json file →
   * {@link HfTokenizer}; a path to a model directory → its tokenizer ({@link #forModel}), which it
   * must have.
   *
   * @throws IllegalArgumentException when the name is none of these
   */
  public static Tokenizer byName(String name) {
    if (name.equals(BYTES)) {
      return ByteTokenizer.INSTANCE;
    }
    Path p = Path.of(name);
    if (Files.isDirectory(p)) {
      return forModel(p)
          .orElseThrow(
              () -> new IllegalArgumentException(name + ": model directory without a tokenizer"));
    }
    if (Files.isRegularFile(p)) {
      return HfTokenizer.load(p);
    }
    throw new IllegalArgumentException(
        "unknown tokenizer \""
            + name
            + "\": expected \""
            + BYTES
            + "\", a tokenizer.json or a model directory");
  }

  /**
   * Marks modelDir as a byte-level model ({@code tokenizer_config.json}), so {@link #forModel}
   * finds its tokenizer.
   */
  public static void writeByteTokenizerMarker(Path modelDir) throws IOException {
    Files.writeString(
        modelDir.resolve(TOKENIZER_CONFIG),
        "{\n  \"tokenizer_class\": \""
            + BYTE_TOKENIZER_CLASS
            + "\",\n  \"comment\": \"one token per UTF-8 byte, id = byte value (mamba-spark)\"\n}\n",
        StandardCharsets.UTF_8);
  }
}
