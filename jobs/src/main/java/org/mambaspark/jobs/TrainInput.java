package org.mambaspark.jobs;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.util.LongAccumulator;
import org.mambaspark.spark.MambaSettings;
import org.mambaspark.tokenizer.Tokenizer;
import org.mambaspark.tokenizer.Tokenizers;
import scala.Tuple2;

/**
 * The training sequences of an input, read by the same code as the inference jobs' input ({@link
 * MambaJob#read}: text, JSON lines or Parquet). A row with {@code input_ids} of exactly L ids is a
 * sequence as it is; other rows (ids, or text tokenized with the model's tokenizer) are packed with
 * the EOS separator, L ids at a time, the tail of each partition's stream dropped. Rows that cannot
 * be used (null, empty, an id list with a null) are counted ({@link #unusableRows}), or with {@code
 * strict} fail the job naming the first; an id outside the vocabulary always fails naming its row.
 * Rows are numbered from 0 in the order Spark reads the input.
 */
final class TrainInput {
  final JavaRDD<int[]> sequences;
  private final LongAccumulator unusable;
  private final LongAccumulator dropped;

  private TrainInput(JavaRDD<int[]> sequences, LongAccumulator unusable, LongAccumulator dropped) {
    this.sequences = sequences;
    this.unusable = unusable;
    this.dropped = dropped;
  }

  /** Rows skipped as unusable, counted once the sequences were computed (cached by the caller). */
  long unusableRows() {
    return unusable.value();
  }

  /** Ids left over at the end of each partition's packing (less than one sequence each). */
  long droppedTokens() {
    return dropped.value();
  }

  static TrainInput read(
      SparkSession spark,
      String flag,
      String input,
      String inputFormat,
      String tokDir,
      int L,
      int eos,
      int V,
      boolean strict) {
    Map<String, String> conf = new java.util.HashMap<>();
    conf.put(MambaSettings.INPUT.key(), input);
    if (inputFormat != null) {
      conf.put(MambaSettings.INPUT_FORMAT.key(), inputFormat);
    }
    MambaSettings s = MambaSettings.of(conf);
    Dataset<Row> rows = MambaJob.read(spark, s);
    List<String> cols = Arrays.asList(rows.columns());
    boolean ids = cols.contains(s.idsCol);
    if (!ids && !cols.contains(s.textCol)) {
      throw new IllegalArgumentException(
          flag
              + " "
              + input
              + ": needs an "
              + s.idsCol
              + " or a "
              + s.textCol
              + " column, has "
              + cols);
    }
    if (!ids && tokDir == null && V < 256) {
      throw new IllegalArgumentException(
          flag
              + " "
              + input
              + ": text input needs a model with a tokenizer (or a byte-level model)");
    }
    TokenizerFiles tokFiles = ids || tokDir == null ? null : TokenizerFiles.of(Path.of(tokDir));
    LongAccumulator unusable = spark.sparkContext().longAccumulator("unusable rows of " + input);
    LongAccumulator dropped = spark.sparkContext().longAccumulator("dropped tokens of " + input);
    org.apache.spark.api.java.JavaPairRDD<Row, Long> numbered =
        rows.select(ids ? s.idsCol : s.textCol).javaRDD().zipWithIndex();
    JavaRDD<int[]> seqs =
        numbered.mapPartitions(
            it -> {
              Packer p = new Packer(L, eos);
              Tokenizer tok =
                  ids
                      ? null
                      : tokFiles == null ? Tokenizers.byName(Tokenizers.BYTES) : tokFiles.open();
              try {
                while (it.hasNext()) {
                  Tuple2<Row, Long> t = it.next();
                  int[] doc = ids ? ids(t._1(), t._2(), V, flag + " " + input) : text(t._1(), tok);
                  if (doc == null || doc.length == 0) {
                    if (strict) {
                      throw new IllegalArgumentException(
                          flag
                              + " "
                              + input
                              + " row "
                              + t._2()
                              + ": "
                              + (doc == null ? "null or holds a null id" : "empty")
                              + " (--strict)");
                    }
                    unusable.add(1);
                    continue;
                  }
                  p.add(doc);
                }
              } finally {
                if (tok != null) {
                  tok.close();
                }
              }
              dropped.add(p.fill);
              return p.out.iterator();
            });
    return new TrainInput(seqs, unusable, dropped);
  }

  /**
   * A model's tokenizer files as bytes, shipped with the tasks: the driver's model folder may be a
   * local copy (of an HDFS checkpoint) that executors on other hosts cannot read. An executor
   * writes them into a temporary folder, loads the tokenizer from it and deletes it.
   */
  static final class TokenizerFiles implements java.io.Serializable {
    private static final long serialVersionUID = 1L;
    private final Map<String, byte[]> files = new java.util.TreeMap<>();

    /** The tokenizer files of the model folder dir (none: the byte-level tokenizer). */
    static TokenizerFiles of(Path dir) {
      Tokenizers.forModel(dir).ifPresent(Tokenizer::close); // errors name the user's folder
      TokenizerFiles t = new TokenizerFiles();
      for (String name : List.of(Tokenizers.TOKENIZER_JSON, Tokenizers.TOKENIZER_CONFIG)) {
        Path f = dir.resolve(name);
        if (java.nio.file.Files.isRegularFile(f)) {
          try {
            t.files.put(name, java.nio.file.Files.readAllBytes(f));
          } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(f + ": cannot read", e);
          }
        }
      }
      return t;
    }

    Tokenizer open() {
      Path dir = null;
      try {
        dir = java.nio.file.Files.createTempDirectory("mamba-tokenizer-");
        for (Map.Entry<String, byte[]> f : files.entrySet()) {
          java.nio.file.Files.write(dir.resolve(f.getKey()), f.getValue());
        }
        return Tokenizers.forModel(dir).orElse(Tokenizers.byName(Tokenizers.BYTES));
      } catch (java.io.IOException e) {
        throw new java.io.UncheckedIOException("cannot write the tokenizer's files", e);
      } finally {
        if (dir != null) {
          org.apache.hadoop.fs.FileUtil.fullyDelete(dir.toFile());
        }
      }
    }
  }

  /** The row's ids, or null for a null row or a null id; an id outside [0, V) fails. */
  private static int[] ids(Row row, long index, int V, String where) {
    if (row.isNullAt(0)) {
      return null;
    }
    List<Object> list = row.getList(0);
    int[] doc = new int[list.size()];
    for (int i = 0; i < doc.length; i++) {
      Object o = list.get(i);
      if (o == null) {
        return null;
      }
      long v = ((Number) o).longValue();
      if (v < 0 || v >= V) {
        throw new IllegalArgumentException(
            where
                + " row "
                + index
                + ": input_ids value "
                + v
                + " at position "
                + i
                + " is outside the model's vocabulary [0, "
                + V
                + ")");
      }
      doc[i] = (int) v;
    }
    return doc;
  }

  private static int[] text(Row row, Tokenizer tok) {
    return row.isNullAt(0) ? null : tok.encode(row.getString(0));
  }

  /** Documents into sequences of L ids: one of exactly L ids as it is, others packed with EOS. */
  private static final class Packer {
    final List<int[]> out = new ArrayList<>();
    final int[] buf;
    final int eos;
    int fill;

    Packer(int L, int eos) {
      this.buf = new int[L];
      this.eos = eos;
    }

    void add(int[] doc) {
      if (doc.length == buf.length) {
        out.add(doc);
        return;
      }
      for (int k = 0; k <= doc.length; k++) {
        buf[fill++] = k < doc.length ? doc[k] : eos;
        if (fill == buf.length) {
          out.add(buf.clone());
          fill = 0;
        }
      }
    }
  }

  /** The first IllegalArgumentException a failed Spark job carries (a row's error), if any. */
  static RuntimeException rowError(Exception e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof IllegalArgumentException a) {
        return new IllegalArgumentException(a.getMessage(), e);
      }
    }
    return e instanceof RuntimeException r ? r : new IllegalStateException(e.getMessage(), e);
  }
}
