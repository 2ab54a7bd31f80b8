package org.mambaspark.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * The package's one Jackson set-up: strict parsing (a duplicate key or trailing garbage is an
 * error, not a silent last-one-wins; the bare {@code Infinity} and {@code NaN} Python's json writes
 * are read, as in Mamba-2's {@code time_step_limit}) and Hugging Face-looking output (2-space
 * indent, {@code "key": value}, '\n' line ends).
 */
final class Json {
  static final ObjectMapper MAPPER =
      new ObjectMapper()
          .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
          .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS.mappedFeature())
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

  /** config.json and index files are kilobytes; anything this big is not one. */
  private static final long MAX_SMALL_FILE_BYTES = 64L << 20;

  private Json() {}

  /** Parses a JSON document; {@code what} names it in the error ("header", "index"). */
  static JsonNode parse(Path file, byte[] bytes, String what) {
    try {
      JsonNode root = MAPPER.readTree(bytes);
      if (root == null || root.isMissingNode()) {
        throw new CheckpointException(file, what + " is empty");
      }
      return root;
    } catch (JsonProcessingException e) {
      throw new CheckpointException(
          file, what + " is not valid JSON: " + e.getOriginalMessage(), e);
    } catch (IOException e) {
      throw new CheckpointException(file, "cannot parse " + what + ": " + e, e);
    }
  }

  /** Reads and parses a small JSON file (config.json, an index), which must hold an object. */
  static JsonNode readObjectFile(Path file, String what) {
    byte[] bytes;
    try {
      long size = Files.size(file);
      if (size > MAX_SMALL_FILE_BYTES) {
        throw new CheckpointException(
            file,
            what
                + " is "
                + size
                + " bytes; a "
                + what
                + " is at most "
                + MAX_SMALL_FILE_BYTES
                + " bytes");
      }
      bytes = Files.readAllBytes(file);
    } catch (NoSuchFileException e) {
      throw new CheckpointException(file, what + " does not exist", e);
    } catch (IOException e) {
      throw new CheckpointException(file, "cannot read " + what + ": " + e, e);
    }
    JsonNode root = parse(file, bytes, what);
    if (!root.isObject()) {
      throw new CheckpointException(
          file, what + " is not a JSON object (found " + root.getNodeType() + ")");
    }
    return root;
  }

  /** Pretty-printed UTF-8 bytes with a final newline, as transformers writes config.json. */
  static byte[] pretty(Object value) {
    try {
      ObjectWriter w = MAPPER.writer(new Printer());
      return (w.writeValueAsString(value) + "\n").getBytes(StandardCharsets.UTF_8);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot serialise " + value.getClass().getName(), e);
    }
  }

  /** Compact UTF-8 bytes (safetensors headers). */
  static byte[] compact(Object value) {
    try {
      return MAPPER.writeValueAsBytes(value);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot serialise " + value.getClass().getName(), e);
    }
  }

  /** Python's {@code json.dumps(indent=2)} look. */
  private static final class Printer extends DefaultPrettyPrinter {
    private static final long serialVersionUID = 1L;

    Printer() {
      DefaultIndenter indenter = new DefaultIndenter("  ", "\n");
      indentObjectsWith(indenter);
      indentArraysWith(indenter);
      _objectFieldValueSeparatorWithSpaces = ": ";
    }

    @Override
    public DefaultPrettyPrinter createInstance() {
      return new Printer();
    }
  }
}
