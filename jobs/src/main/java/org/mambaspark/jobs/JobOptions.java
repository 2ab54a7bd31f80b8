package org.mambaspark.jobs;

import java.util.LinkedHashMap;
import java.util.Map;
import org.mambaspark.spark.MambaSettings;
import picocli.CommandLine.Option;

/**
 * The flags every Spark job takes; each sets a {@code spark.mamba.*} key (see {@link
 * MambaSettings}), so that a flag and {@code --conf spark.mamba.x=...} are interchangeable, the
 * flag winning. A picocli mixin, shared by the spark-submit main classes and bin/mamba's commands.
 */
public final class JobOptions {
  final Map<String, String> settings = new LinkedHashMap<>();
  final Map<String, String> sparkConf = new LinkedHashMap<>();
  String master;
  int show;

  /** The --master given, else {@code fallback}. */
  public String masterOr(String fallback) {
    return master != null ? master : fallback;
  }

  /** The spark.mamba.* settings the flags and --conf gave. */
  public Map<String, String> settings() {
    return settings;
  }

  void put(MambaSettings.Key k, Object v) {
    settings.put(k.key(), String.valueOf(v));
  }

  @Option(
      names = "--master",
      paramLabel = "URL",
      description =
          "Spark master (bin/mamba default local[*]; under spark-submit, spark-submit's own)")
  void master(String v) {
    master = v;
  }

  @Option(
      names = "--conf",
      paramLabel = "KEY=VALUE",
      description = "any Spark setting, spark.mamba.* included (repeatable)")
  void conf(Map<String, String> kv) {
    for (Map.Entry<String, String> e : kv.entrySet()) {
      if (e.getKey().startsWith(MambaSettings.PREFIX)) {
        settings.put(e.getKey(), e.getValue());
      } else {
        sparkConf.put(e.getKey(), e.getValue());
      }
    }
  }

  @Option(
      names = "--model",
      paramLabel = "DIR",
      description = "model directory, any Hadoop path (spark.mamba.model)")
  void model(String v) {
    put(MambaSettings.MODEL, v);
  }

  @Option(
      names = "--input",
      paramLabel = "PATH",
      description = "input file or directory, any Hadoop path")
  void input(String v) {
    put(MambaSettings.INPUT, v);
  }

  @Option(
      names = "--output",
      paramLabel = "PATH",
      description = "output directory, any Hadoop path")
  void output(String v) {
    put(MambaSettings.OUTPUT, v);
  }

  @Option(
      names = "--input-format",
      paramLabel = "FMT",
      description = "text | json | parquet (default: by extension; .txt text, .json/.jsonl json)")
  void inputFormat(String v) {
    put(MambaSettings.INPUT_FORMAT, v);
  }

  @Option(names = "--output-format", paramLabel = "FMT", description = "parquet (default) | json")
  void outputFormat(String v) {
    put(MambaSettings.OUTPUT_FORMAT, v);
  }

  @Option(names = "--overwrite", description = "replace an existing output")
  void overwrite(boolean v) {
    put(MambaSettings.OVERWRITE, v);
  }

  @Option(names = "--partitions", paramLabel = "N", description = "repartition the input first")
  void partitions(int v) {
    put(MambaSettings.PARTITIONS, v);
  }

  @Option(names = "--text-col", paramLabel = "COL", description = "text column (default text)")
  void textCol(String v) {
    put(MambaSettings.TEXT_COL, v);
  }

  @Option(
      names = "--ids-col",
      paramLabel = "COL",
      description = "token-ids column, used when present (default input_ids)")
  void idsCol(String v) {
    put(MambaSettings.IDS_COL, v);
  }

  @Option(names = "--batch-size", paramLabel = "N", description = "documents per forward (32)")
  void batchSize(int v) {
    put(MambaSettings.BATCH_SIZE, v);
  }

  @Option(names = "--batch-tokens", paramLabel = "N", description = "positions per forward (4096)")
  void batchTokens(int v) {
    put(MambaSettings.BATCH_TOKENS, v);
  }

  @Option(
      names = "--max-padding",
      paramLabel = "F",
      description = "at most this fraction of a batched forward may be padding (0.1)")
  void maxPadding(double v) {
    put(MambaSettings.MAX_PADDING, v);
  }

  @Option(
      names = "--piece-length",
      paramLabel = "N",
      description = "longer documents run in pieces, the state carried (2048)")
  void pieceLength(int v) {
    put(MambaSettings.PIECE_LENGTH, v);
  }

  @Option(
      names = "--max-tokens",
      paramLabel = "N",
      description = "longer documents get an error (16777216)")
  void maxTokens(int v) {
    put(MambaSettings.MAX_TOKENS, v);
  }

  @Option(
      names = "--sort-window",
      paramLabel = "N",
      description = "rows sorted by length together (1024)")
  void sortWindow(int v) {
    put(MambaSettings.SORT_WINDOW, v);
  }

  @Option(
      names = "--threads",
      paramLabel = "N",
      description = "engine threads per executor JVM (default: the cores Spark gives the executor)")
  void threads(int v) {
    put(MambaSettings.THREADS, v);
  }

  @Option(
      names = "--weights-dtype",
      paramLabel = "T",
      description =
          "fp32 (default) | bf16 | int8: the format the model's big matrices are held in"
              + " (spark.mamba.weightsDtype)")
  void weightsDtype(String v) {
    put(MambaSettings.WEIGHTS_DTYPE, v);
  }

  @Option(
      names = "--progress-interval",
      paramLabel = "S",
      description = "seconds between progress lines, 0 = none (10)")
  void progressInterval(int v) {
    put(MambaSettings.PROGRESS_INTERVAL, v);
  }

  @Option(
      names = "--show",
      paramLabel = "N",
      description = "print the first N output rows as JSON when done (default 0)")
  void show(int v) {
    show = v;
  }

  /** score's flags. */
  public static final class Score {
    final Map<String, String> settings = new LinkedHashMap<>();

    public Map<String, String> settings() {
      return settings;
    }

    @Option(
        names = "--logprobs",
        description = "add logprobs: the log-probability of token i+1 given tokens 0..i")
    void logprobs(boolean v) {
      settings.put(MambaSettings.LOGPROBS.key(), String.valueOf(v));
    }

    @Option(
        names = "--split",
        paramLabel = "HOW",
        description = "none (default) | sentences: score each sentence as a row (Spark NLP)")
    void split(String v) {
      settings.put(MambaSettings.SPLIT.key(), v);
    }
  }

  /** embed's flags. */
  public static final class Embed {
    final Map<String, String> settings = new LinkedHashMap<>();

    public Map<String, String> settings() {
      return settings;
    }

    @Option(names = "--pooling", paramLabel = "HOW", description = "mean (default) | last")
    void pooling(String v) {
      settings.put(MambaSettings.POOLING.key(), v);
    }
  }

  /** generate's flags. */
  public static final class Generate {
    final Map<String, String> settings = new LinkedHashMap<>();

    public Map<String, String> settings() {
      return settings;
    }

    @Option(names = "--max-new-tokens", paramLabel = "N", description = "at most N new tokens (32)")
    void maxNewTokens(int v) {
      settings.put(MambaSettings.MAX_NEW_TOKENS.key(), String.valueOf(v));
    }

    @Option(names = "--temperature", paramLabel = "T", description = "0 = greedy (default)")
    void temperature(float v) {
      settings.put(MambaSettings.TEMPERATURE.key(), String.valueOf(v));
    }

    @Option(names = "--top-k", paramLabel = "K", description = "keep the k most likely (0 = all)")
    void topK(int v) {
      settings.put(MambaSettings.TOP_K.key(), String.valueOf(v));
    }

    @Option(names = "--top-p", paramLabel = "P", description = "nucleus mass (1 = off)")
    void topP(float v) {
      settings.put(MambaSettings.TOP_P.key(), String.valueOf(v));
    }

    @Option(names = "--seed", paramLabel = "S", description = "sampling seed (0)")
    void seed(long v) {
      settings.put(MambaSettings.SEED.key(), String.valueOf(v));
    }

    @Option(
        names = "--stop-ids",
        paramLabel = "IDS",
        description = "comma-separated ids that end a continuation (default: eos)")
    void stopIds(String v) {
      settings.put(MambaSettings.STOP_IDS.key(), v);
    }
  }
}
