package org.mambaspark.spark;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.mambaspark.batch.DocumentRunner;
import org.mambaspark.ops.WeightMatrix;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Every {@code spark.mamba.*} setting of the jobs, the ML stage and the SQL functions, parsed and
 * checked in one place. Sources, later wins: the defaults below, the Spark configuration ({@code
 * --conf spark.mamba.batchSize=64}, spark-defaults.conf, {@code spark.conf.set}), then the job's
 * flags ({@code --batch-size 64}) or the stage's Params. {@link #KEYS} is the table in the README.
 *
 * <p>A plain serializable value: it travels to the executors inside the partition function.
 */
public final class MambaSettings implements Serializable {
  private static final long serialVersionUID = 1L;
  private static final Logger LOG = LoggerFactory.getLogger(MambaSettings.class);

  /** The prefix spark-submit keeps ({@code --conf} keys not starting with {@code spark.} drop). */
  public static final String PREFIX = "spark.mamba.";

  /** One setting: its key, the job flag that sets it too, its default (as text) and meaning. */
  public record Key(String name, String flag, String defaultValue, String description) {
    public String key() {
      return PREFIX + name;
    }
  }

  private static final Map<String, Key> BY_NAME = new LinkedHashMap<>();

  private static Key key(String name, String flag, String def, String description) {
    Key k = new Key(name, flag, def, description);
    BY_NAME.put(k.key(), k);
    return k;
  }

  public static final Key MODEL =
      key(
          "model",
          "--model",
          "",
          "model directory (config.json, model.safetensors, tokenizer) on any Hadoop path;"
              + " required");
  public static final Key INPUT = key("input", "--input", "", "job input path (any Hadoop path)");
  public static final Key OUTPUT = key("output", "--output", "", "job output path");
  public static final Key INPUT_FORMAT =
      key(
          "inputFormat",
          "--input-format",
          "by extension",
          "text (one document a line), json (JSON lines) or parquet; by default from the files"
              + " (.txt text, .json/.jsonl json, .parquet parquet; others by their first bytes)");
  public static final Key OUTPUT_FORMAT =
      key("outputFormat", "--output-format", "parquet", "parquet or json (JSON lines)");
  public static final Key OVERWRITE =
      key("overwrite", "--overwrite", "false", "replace an existing output");
  public static final Key PARTITIONS =
      key(
          "partitions",
          "--partitions",
          "0",
          "repartition the input into this many partitions first (0 = as read)");
  public static final Key TEXT_COL =
      key(
          "textCol",
          "--text-col",
          "text",
          "input column with the text: a string, or a Spark NLP annotation column (one result row"
              + " per annotation)");
  public static final Key IDS_COL =
      key(
          "idsCol",
          "--ids-col",
          "input_ids",
          "input column with pre-tokenized ids (array of integers); used when present");
  public static final Key BATCH_SIZE =
      key(
          "batchSize",
          "--batch-size",
          "32",
          "at most this many documents in one forward (generate: decoded together)");
  public static final Key BATCH_TOKENS =
      key(
          "batchTokens",
          "--batch-tokens",
          "4096",
          "at most this many positions (documents × the longest one's tokens) in one forward");
  public static final Key MAX_PADDING =
      key(
          "maxPadding",
          "--max-padding",
          "0.1",
          "at most this fraction of a batched forward's positions may be padding");
  public static final Key PIECE_LENGTH =
      key(
          "pieceLength",
          "--piece-length",
          "2048",
          "documents longer than this are run in pieces of this many tokens, the state carried"
              + " (same result as one pass, bounded memory)");
  public static final Key MAX_TOKENS =
      key(
          "maxTokens",
          "--max-tokens",
          "16777216",
          "a longer document gets an error instead of a result");
  public static final Key SORT_WINDOW =
      key(
          "sortWindow",
          "--sort-window",
          "1024",
          "rows of a partition read ahead and sorted by length before batching");
  public static final Key THREADS =
      key(
          "threads",
          "--threads",
          "0",
          "engine threads per executor JVM, shared by its tasks (0 = the cores Spark gives the"
              + " executor)");
  public static final Key WEIGHTS_DTYPE =
      key(
          "weightsDtype",
          "--weights-dtype",
          "fp32",
          "the big matrices in memory: fp32, bf16 (half the bytes) or int8 (a quarter; a scale per"
              + " 32 weights); arithmetic stays fp32. GPUs take fp32 or bf16");
  public static final Key LOGPROBS =
      key(
          "logprobs",
          "--logprobs",
          "false",
          "score: add logprobs, the log-probability of token i+1 given tokens 0..i, for each i");
  public static final Key SPLIT =
      key(
          "split",
          "--split",
          "none",
          "score: 'sentences' scores each sentence (Spark NLP's SentenceDetector) as a row");
  public static final Key POOLING =
      key("pooling", "--pooling", "mean", "embed: mean (over all tokens) or last (last token)");
  public static final Key MAX_NEW_TOKENS =
      key("maxNewTokens", "--max-new-tokens", "32", "generate: at most this many new tokens");
  public static final Key TEMPERATURE =
      key("temperature", "--temperature", "0", "generate: 0 = greedy");
  public static final Key TOP_K = key("topK", "--top-k", "0", "generate: keep k tokens (0 = all)");
  public static final Key TOP_P = key("topP", "--top-p", "1", "generate: nucleus mass (1 = off)");
  public static final Key SEED =
      key(
          "seed",
          "--seed",
          "0",
          "generate: sampling seed, mixed with each prompt's hash (a row's result does not depend"
              + " on partitioning or retries)");
  public static final Key STOP_IDS =
      key(
          "stopIds",
          "--stop-ids",
          "eos",
          "generate: comma-separated ids that end a continuation (default the model's eos id)");
  public static final Key PROGRESS_INTERVAL =
      key(
          "progressInterval",
          "--progress-interval",
          "10",
          "seconds between the driver's progress lines (0 = none)");

  /** Every key, in table order. */
  public static final List<Key> KEYS =
      Collections.unmodifiableList(new ArrayList<>(BY_NAME.values()));

  public final String model;
  public final String input;
  public final String output;
  public final String inputFormat; // "" = detected (InputFormats)
  public final String outputFormat;
  public final boolean overwrite;
  public final int partitions;
  public final String textCol;
  public final String idsCol;
  public final int batchSize;
  public final int batchTokens;
  public final double maxPadding;
  public final int pieceLength;
  public final int maxTokens;
  public final int sortWindow;
  public final int threads;
  public final WeightMatrix.Dtype weightsDtype;
  public final boolean logprobs;
  public final String split; // "none" | "sentences"
  public final String pooling; // "mean" | "last"
  public final int maxNewTokens;
  public final float temperature;
  public final int topK;
  public final float topP;
  public final long seed;
  public final int[] stopIds; // null = the model's eos
  public final int progressInterval;

  /** The spark.mamba.* entries these settings were made from. */
  private final LinkedHashMap<String, String> source = new LinkedHashMap<>();

  private MambaSettings(Map<String, String> m) {
    for (Map.Entry<String, String> e : m.entrySet()) {
      if (e.getKey().startsWith(PREFIX)) {
        source.put(e.getKey(), e.getValue());
      }
    }
    for (String k : m.keySet()) {
      if (k.startsWith(PREFIX) && !BY_NAME.containsKey(k) && !k.startsWith(PREFIX + "train.")) {
        // not an error: other parts of the project may read spark.mamba.* keys of their own
        LOG.warn("unknown setting {} is ignored (a typo? known: {})", k, BY_NAME.keySet());
      }
    }
    model = str(m, MODEL);
    input = str(m, INPUT);
    output = str(m, OUTPUT);
    String inf = str(m, INPUT_FORMAT);
    // empty, as a scheduler passes an unset option, means the default: detected from the files
    inputFormat =
        inf.isEmpty() || inf.equals(INPUT_FORMAT.defaultValue())
            ? ""
            : oneOf(INPUT_FORMAT, inf, "text", "json", "parquet");
    outputFormat = oneOf(OUTPUT_FORMAT, str(m, OUTPUT_FORMAT), "parquet", "json");
    overwrite = bool(m, OVERWRITE);
    partitions = integer(m, PARTITIONS, 0);
    textCol = str(m, TEXT_COL);
    idsCol = str(m, IDS_COL);
    batchSize = integer(m, BATCH_SIZE, 1);
    batchTokens = integer(m, BATCH_TOKENS, 1);
    maxPadding = number(m, MAX_PADDING);
    pieceLength = integer(m, PIECE_LENGTH, 1);
    maxTokens = integer(m, MAX_TOKENS, 1);
    sortWindow = integer(m, SORT_WINDOW, 1);
    threads = integer(m, THREADS, 0);
    weightsDtype =
        WeightMatrix.Dtype.parse(
            str(m, WEIGHTS_DTYPE), WEIGHTS_DTYPE.key() + " (" + WEIGHTS_DTYPE.flag() + ")");
    logprobs = bool(m, LOGPROBS);
    split = oneOf(SPLIT, str(m, SPLIT), "none", "sentences");
    pooling = oneOf(POOLING, str(m, POOLING), "mean", "last");
    maxNewTokens = integer(m, MAX_NEW_TOKENS, 0);
    temperature = (float) number(m, TEMPERATURE);
    topK = integer(m, TOP_K, 0);
    topP = (float) number(m, TOP_P);
    seed = (long) number(m, SEED);
    stopIds = ids(m, STOP_IDS);
    progressInterval = integer(m, PROGRESS_INTERVAL, 0);
    if (!(temperature >= 0) || Float.isInfinite(temperature)) {
      throw bad(TEMPERATURE, String.valueOf(temperature), "a finite number >= 0");
    }
    if (!(maxPadding >= 0 && maxPadding <= 1)) {
      throw bad(MAX_PADDING, String.valueOf(maxPadding), "a number in [0, 1]");
    }
    if (!(topP > 0 && topP <= 1)) {
      throw bad(TOP_P, String.valueOf(topP), "a number in (0, 1]");
    }
  }

  /** The defaults overridden by {@code conf}'s {@code spark.mamba.*} entries (others ignored). */
  public static MambaSettings of(Map<String, String> conf) {
    return new MambaSettings(conf);
  }

  /**
   * As the defaults, with {@code overrides} (key → value) on top: {@code "batchSize", "8", ...}.
   */
  public static MambaSettings of(String... keyValues) {
    if (keyValues.length % 2 != 0) {
      throw new IllegalArgumentException("key/value pairs expected");
    }
    Map<String, String> m = new LinkedHashMap<>();
    for (int i = 0; i < keyValues.length; i += 2) {
      String k = keyValues[i].startsWith(PREFIX) ? keyValues[i] : PREFIX + keyValues[i];
      m.put(k, keyValues[i + 1]);
    }
    return new MambaSettings(m);
  }

  /** These settings with one changed. */
  public MambaSettings with(Key k, String value) {
    Map<String, String> m = new LinkedHashMap<>(source);
    m.put(k.key(), value);
    return new MambaSettings(m);
  }

  /** What {@link DocumentRunner} needs of these settings. */
  public DocumentRunner.Options runnerOptions() {
    return new DocumentRunner.Options(
        batchSize,
        batchTokens,
        maxPadding,
        pieceLength,
        maxTokens,
        MAX_TOKENS.key(),
        logprobs,
        pooling,
        maxNewTokens,
        temperature,
        topK,
        topP,
        seed,
        stopIds);
  }

  /** The model path, or an error saying how to give one. */
  public String requireModel() {
    if (model.isEmpty()) {
      throw new IllegalArgumentException(
          "no model: pass --model DIR or set " + MODEL.key() + " (a directory with config.json)");
    }
    return model;
  }

  private static String str(Map<String, String> m, Key k) {
    String v = m.get(k.key());
    return v == null ? k.defaultValue() : v.trim();
  }

  private static IllegalArgumentException bad(Key k, String v, String expected) {
    return new IllegalArgumentException(
        k.key() + " (" + k.flag() + ") must be " + expected + ", got '" + v + "'");
  }

  private static String oneOf(Key k, String v, String... allowed) {
    String l = v.toLowerCase(Locale.ROOT);
    for (String a : allowed) {
      if (a.equals(l)) {
        return a;
      }
    }
    throw bad(k, v, "one of " + Arrays.toString(allowed));
  }

  private static boolean bool(Map<String, String> m, Key k) {
    String v = str(m, k).toLowerCase(Locale.ROOT);
    if (v.equals("true") || v.equals("false")) {
      return v.equals("true");
    }
    throw bad(k, v, "true or false");
  }

  private static int integer(Map<String, String> m, Key k, int min) {
    String v = str(m, k);
    try {
      int i = Integer.parseInt(v);
      if (i >= min) {
        return i;
      }
    } catch (NumberFormatException e) {
      // below
    }
    throw bad(k, v, "an integer >= " + min);
  }

  private static double number(Map<String, String> m, Key k) {
    String v = str(m, k);
    try {
      return Double.parseDouble(v);
    } catch (NumberFormatException e) {
      throw bad(k, v, "a number");
    }
  }

  private static int[] ids(Map<String, String> m, Key k) {
    String v = str(m, k);
    if (v.equals(k.defaultValue()) || v.isEmpty()) {
      return null;
    }
    String[] parts = v.split(",", -1);
    int[] r = new int[parts.length];
    for (int i = 0; i < parts.length; i++) {
      try {
        r[i] = Integer.parseInt(parts[i].trim());
      } catch (NumberFormatException e) {
        throw bad(k, v, "comma-separated token ids");
      }
    }
    return r;
  }

  @Override
  public String toString() {
    return "MambaSettings{model="
        + model
        + ", batchSize="
        + batchSize
        + ", batchTokens="
        + batchTokens
        + ", pieceLength="
        + pieceLength
        + ", maxTokens="
        + maxTokens
        + ", threads="
        + threads
        + ", weightsDtype="
        + weightsDtype.label()
        + "}";
  }
}
