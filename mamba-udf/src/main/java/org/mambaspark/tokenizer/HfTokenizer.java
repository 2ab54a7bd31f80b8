package org.mambaspark.tokenizer;

import ai.djl.engine.EngineException;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Objects;
import java.util.concurrent.locks.ReadWriteLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Hugging Face {@code tokenizer.json} (the GPT-NeoX byte-level BPE of the published Mamba
 * checkpoints) through DJL's JNI binding of the Rust tokenizers library, whose native library ships
 * inside the DJL jar: no network.
 *
 * <p>Why the options: DJL's defaults would add special tokens and silently truncate at 512 tokens
 * (and a tokenizer.json may carry its own truncation and padding): all are switched off, so long
 * documents reach the model whole. DJL is deliberately not given the {@code tokenizer_config.json}
 * that Hugging Face model directories carry ({@code optTokenizerConfigPath}): its {@code
 * clean_up_tokenization_spaces} would make decode lossy ({@code "a . b"} → {@code "a. b"}) and its
 * {@code add_prefix_space} would change the ids ({@code "hello"} → {@code [Ġ, hello]}).
 *
 * <p>What does not round-trip: the tokenizer's normalizer runs first (GPT-NeoX's is NFC, so an
 * {@code e} followed by U+0301 comes back as one {@code é}); unpaired surrogates (not Unicode) come
 * back as U+FFFD; text that spells a special token ({@code "<|endoftext|>"}) encodes to that
 * token's id, as in Hugging Face.
 *
 * <p>Thread safety: the Rust tokenizer is immutable once DJL has configured it, and encode/decode
 * only read it (its BPE cache has a lock of its own), so calls run concurrently. The one hazard is
 * {@link #close} freeing the native object under a running call, which would crash the JVM: a
 * read-write lock keeps them apart.
 *
 * <p>DJL settings made here, each only when neither the system property nor the environment
 * variable is set:
 *
 * <ul>
 *   <li>{@code RUST_FLAVOR=cpu}: on a machine with CUDA DJL otherwise wants its CUDA build of the
 *       library, which is not in the jar, and downloads it (seen on the H200 host: "Downloading jni
 *       .../cu122-90/libtokenizers.so", then "Failed to load Huggingface native library" offline).
 *       Tokenizing needs no GPU. Too late if other code in this JVM loaded DJL's library first;
 *   <li>{@code OPT_OUT_TRACKING=true}: DJL would otherwise "call home" once a day per JVM (a
 *       request to the EC2 metadata address, then telemetry from EC2 hosts); executors must not
 *       make network calls the job did not ask for.
 * </ul>
 *
 * <p>On first use DJL extracts {@code libtokenizers.so} from its jar to {@code
 * $DJL_CACHE_DIR/tokenizers/...} (default {@code ~/.djl.ai}; a temporary directory then a move, so
 * concurrent JVMs are safe); {@code RUST_LIBRARY_PATH} points it at an existing copy instead, for
 * read-only home directories.
 */
public final class HfTokenizer implements Tokenizer {
  private static final Logger LOG = LoggerFactory.getLogger(HfTokenizer.class);

  /**
   * DJL reads these with {@code Utils.getEnvOrSystemProperty}: the environment first, then system
   * properties.
   */
  private static final String[][] DJL_DEFAULTS = {
    {"RUST_FLAVOR", "cpu"}, {"OPT_OUT_TRACKING", "true"}
  };

  private final HuggingFaceTokenizer tokenizer; // native; freed by close()
  private final Path file;
  private final String modelType;
  private final int vocabSize;
  // read: encode/decode, which may run together; write: close
  private final ReadWriteLock lock = new ReentrantReadWriteLock();
  private boolean closed; // guarded by lock

  private HfTokenizer(HuggingFaceTokenizer tokenizer, Path file, String modelType, int vocabSize) {
    this.tokenizer = tokenizer;
    this.file = file;
    this.modelType = modelType;
    this.vocabSize = vocabSize;
  }

  /**
   * Loads a tokenizer.json.
   *
   * @throws IllegalArgumentException naming the file, when it is missing, not JSON, or not a
   *     tokenizer
   * @throws IllegalStateException when DJL's native library cannot be loaded
   */
  public static HfTokenizer load(Path tokenizerJson) {
    if (!Files.isRegularFile(tokenizerJson)) {
      throw new IllegalArgumentException(tokenizerJson + ": no such tokenizer file");
    }
    // Read it ourselves too: a clear error for bad JSON, and the vocabulary size, which DJL does
    // not expose.
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(Files.readString(tokenizerJson, StandardCharsets.UTF_8));
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException(
          tokenizerJson + ": not valid JSON: " + e.getOriginalMessage(), e);
    } catch (IOException e) {
      throw new IllegalArgumentException(tokenizerJson + ": cannot read: " + e, e);
    }
    if (root == null || !root.path("model").isObject()) {
      throw new IllegalArgumentException(
          tokenizerJson + ": no \"model\" object: not a Hugging Face tokenizer.json");
    }
    String modelType = root.path("model").path("type").asText("?");
    int vocabSize = vocabSize(root);
    configureDjl();
    HuggingFaceTokenizer t;
    try {
      t =
          HuggingFaceTokenizer.builder()
              .optTokenizerPath(tokenizerJson)
              .optAddSpecialTokens(false)
              .optTruncation(false)
              .optPadding(false)
              .build();
    } catch (EngineException | UnsatisfiedLinkError e) {
      throw new IllegalStateException(
          "DJL's native tokenizers library did not load (see DJL_CACHE_DIR, RUST_LIBRARY_PATH): "
              + e,
          e);
    } catch (IOException | RuntimeException e) {
      throw new IllegalArgumentException(
          tokenizerJson + ": cannot load the tokenizer: " + e.getMessage(), e);
    }
    LOG.debug("loaded {} ({} model, {} tokens)", tokenizerJson, modelType, vocabSize);
    return new HfTokenizer(t, tokenizerJson, modelType, vocabSize);
  }

  /** One more than the largest id in the model's vocabulary and the added tokens. */
  static int vocabSize(JsonNode root) {
    int max = -1;
    JsonNode vocab = root.path("model").path("vocab");
    if (vocab.isObject()) { // BPE, WordPiece, WordLevel: {"token": id}
      for (Iterator<JsonNode> it = vocab.elements(); it.hasNext(); ) {
        max = Math.max(max, it.next().asInt(-1));
      }
    } else if (vocab.isArray()) { // Unigram: [[piece, score], ...], id = index
      max = vocab.size() - 1;
    }
    for (JsonNode added : root.path("added_tokens")) {
      max = Math.max(max, added.path("id").asInt(-1));
    }
    return max + 1;
  }

  private static void configureDjl() {
    for (String[] kv : DJL_DEFAULTS) {
      if (System.getenv(kv[0]) == null && System.getProperty(kv[0]) == null) {
        System.setProperty(kv[0], kv[1]);
      }
    }
  }

  @Override
  public int[] encode(String text) {
    Objects.requireNonNull(text, "text");
    long[] ids;
    lock.readLock().lock();
    try {
      checkOpen();
      ids = tokenizer.encode(text, false, false).getIds();
    } finally {
      lock.readLock().unlock();
    }
    int[] r = new int[ids.length];
    for (int i = 0; i < ids.length; i++) {
      r[i] = (int) ids[i]; // ids < vocabSize
    }
    return r;
  }

  @Override
  public String decode(int[] ids, int from, int to) {
    Objects.checkFromToIndex(from, to, ids.length);
    long[] l = new long[to - from];
    for (int i = from; i < to; i++) {
      if (ids[i] < 0) {
        // the native side would cast it to an unsigned 32-bit id
        throw new IllegalArgumentException(
            "token id " + ids[i] + " at position " + i + " is negative");
      }
      l[i - from] = ids[i];
    }
    lock.readLock().lock();
    try {
      checkOpen();
      return tokenizer.decode(l, false); // unknown ids are skipped by the Rust side
    } finally {
      lock.readLock().unlock();
    }
  }

  private void checkOpen() {
    if (closed) {
      throw new IllegalStateException(describe() + " is closed");
    }
  }

  @Override
  public int vocabSize() {
    return vocabSize;
  }

  @Override
  public String describe() {
    return "Hugging Face tokenizer " + file + " (" + modelType + ", " + vocabSize + " tokens)";
  }

  @Override
  public String toString() {
    return describe();
  }

  @Override
  public void close() {
    lock.writeLock().lock();
    try {
      if (!closed) {
        closed = true;
        tokenizer.close();
      }
    } finally {
      lock.writeLock().unlock();
    }
  }
}
