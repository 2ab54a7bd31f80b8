package org.mambaspark.spark;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.util.SerializableConfiguration;
import org.apache.spark.util.TaskCompletionListener;
import org.apache.spark.util.TaskFailureListener;
import org.mambaspark.batch.Doc;
import org.mambaspark.batch.DocumentRunner;
import org.mambaspark.model.TokenIds;
import org.mambaspark.tokenizer.Tokenizer;

/**
 * The partition function: reads a window of rows ({@code sortWindow} rows, or fewer when they hold
 * many tokens), turns each into a {@link Doc} (token ids, or the reason it has none), runs the
 * window through a {@link DocumentRunner} (which sorts and batches by length), and emits one output
 * row per input row, in input order, with the task's columns appended. The model comes from the
 * JVM's {@link ModelCache}: loaded by the first task that needs it, shared by all.
 */
final class MambaPartitions implements MapPartitionsFunction<Row, Row> {
  private static final long serialVersionUID = 1L;

  /** A window stops early once it holds this many tokens (bounds a partition's memory). */
  static final long WINDOW_TOKENS = 1L << 22;

  private final MambaDatasets.Plan plan;
  private final MambaSettings s;
  private final MambaMetrics metrics; // may be null
  private final Broadcast<SerializableConfiguration> conf;

  MambaPartitions(
      MambaDatasets.Plan plan,
      MambaSettings s,
      MambaMetrics metrics,
      Broadcast<SerializableConfiguration> conf) {
    this.plan = plan;
    this.s = s;
    this.metrics = metrics;
    this.conf = conf;
  }

  @Override
  public Iterator<Row> call(Iterator<Row> rows) {
    if (!rows.hasNext()) {
      return Collections.emptyIterator(); // an empty partition loads nothing
    }
    ModelCache.Loaded m = ModelCache.get(s.model, conf.value().value(), s.threads, s.weightsDtype);
    if (metrics != null) {
      reportLoadOnSuccess(m);
    }
    DocumentRunner runner = new DocumentRunner(m.runnerForTask(), s.runnerOptions());
    if (metrics != null) { // counted batch by batch: the driver's progress line sees running tasks
      runner.onProgress(
          (documents, tokens) -> {
            metrics.documents.add(documents);
            metrics.tokens.add(tokens);
          });
    }
    return new Windows(rows, m, runner);
  }

  /**
   * Counts this JVM's model load once, in the first task of this JVM that succeeds: Spark keeps the
   * accumulator updates of successful tasks only, so a load claimed by a task that then failed
   * would never be counted.
   */
  private void reportLoadOnSuccess(ModelCache.Loaded m) {
    TaskContext tc = TaskContext.get();
    if (tc == null) {
      if (m.claimLoadReport()) {
        metrics.modelLoads.add(1);
      }
      return;
    }
    AtomicBoolean failed = new AtomicBoolean();
    tc.addTaskFailureListener((TaskFailureListener) (ctx, error) -> failed.set(true));
    tc.addTaskCompletionListener(
        (TaskCompletionListener)
            ctx -> {
              if (!failed.get() && m.claimLoadReport()) {
                metrics.modelLoads.add(1);
              }
            });
  }

  private final class Windows implements Iterator<Row> {
    private final Iterator<Row> rows;
    private final ModelCache.Loaded m;
    private final DocumentRunner runner;
    private final ArrayDeque<Row> ready = new ArrayDeque<>();
    private final int inputIndex;
    private final int kept;

    Windows(Iterator<Row> rows, ModelCache.Loaded m, DocumentRunner runner) {
      this.rows = rows;
      this.m = m;
      this.runner = runner;
      this.inputIndex = plan.keptSchema.fieldIndex(plan.inputCol);
      this.kept = plan.keptSchema.size();
    }

    @Override
    public boolean hasNext() {
      if (ready.isEmpty() && rows.hasNext()) {
        fill();
      }
      return !ready.isEmpty();
    }

    @Override
    public Row next() {
      if (!hasNext()) {
        throw new NoSuchElementException();
      }
      return ready.poll();
    }

    private void fill() {
      List<Row> in = new ArrayList<>();
      List<Doc> docs = new ArrayList<>();
      long tokens = 0;
      // generation runs one prompt at a time: no window to sort, and progress per row
      int window = plan.task == Task.GENERATE ? 1 : s.sortWindow;
      while (rows.hasNext() && in.size() < window && tokens < WINDOW_TOKENS) {
        Row r = rows.next();
        Doc d = read(r);
        in.add(r);
        docs.add(d);
        tokens += d.tokens();
      }
      switch (plan.task) {
        case SCORE:
          runner.score(docs);
          break;
        case EMBED:
          runner.embed(docs);
          break;
        case GENERATE:
          runner.generate(docs);
          break;
      }
      long errors = 0, predicted = 0, generated = 0;
      double lossSum = 0;
      for (int i = 0; i < in.size(); i++) {
        Doc d = docs.get(i);
        ready.add(output(in.get(i), d));
        if (!d.ok()) {
          errors++;
        } else if (plan.task == Task.SCORE) {
          lossSum += d.loss * (d.tokens() - 1);
          predicted += d.tokens() - 1;
        } else if (plan.task == Task.GENERATE) {
          generated += d.generated.length;
        }
      }
      if (metrics != null) {
        metrics.errors.add(errors);
        metrics.lossSum.add(lossSum);
        metrics.predicted.add(predicted);
        metrics.generated.add(generated);
      }
    }

    /** The row's token ids, or why there are none. */
    private Doc read(Row r) {
      if (plan.corruptIndex >= 0 && !r.isNullAt(plan.corruptIndex)) {
        return Doc.failed(
            "malformed input record (not parsable, or not UTF-8): "
                + abbreviate(r.getString(plan.corruptIndex)));
      }
      if (r.isNullAt(inputIndex)) {
        return Doc.failed("'" + plan.inputCol + "' is null");
      }
      if (plan.ids) {
        List<Object> l = r.getList(inputIndex);
        int[] ids = new int[l.size()];
        for (int i = 0; i < ids.length; i++) {
          Object o = l.get(i);
          if (o == null) {
            return Doc.failed("token id at position " + i + " is null");
          }
          long v = ((Number) o).longValue();
          if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) { // else DocumentRunner checks it
            return Doc.failed(TokenIds.outside(v, i, m.model.config.vocabSize));
          }
          ids[i] = (int) v;
        }
        return new Doc(ids);
      }
      byte[] bytes = (byte[]) r.get(kept); // TEXT_BYTES, after the kept columns
      String text;
      try {
        text = decodeUtf8Strict(bytes);
      } catch (IllegalArgumentException e) {
        return Doc.failed(e.getMessage());
      }
      Tokenizer tok = m.tokenizer;
      if (tok == null) {
        return Doc.failed("the model has no tokenizer: give token ids instead of text");
      }
      try {
        return new Doc(tok.encode(text));
      } catch (RuntimeException e) {
        return Doc.failed("cannot tokenize: " + DocumentRunner.message(e));
      }
    }

    private Row output(Row r, Doc d) {
      Object[] v = new Object[plan.outputSchema.size()];
      for (int i = 0; i < kept; i++) {
        v[i] = r.get(i);
      }
      int k = kept;
      Integer tokens = d.ids == null ? null : d.tokens();
      switch (plan.task) {
        case SCORE:
          v[k++] = d.ok() ? d.loss : null;
          v[k++] = d.ok() ? Math.exp(d.loss) : null;
          v[k++] = tokens;
          if (s.logprobs) {
            v[k++] = d.ok() ? d.logprobs : null;
          }
          break;
        case EMBED:
          v[k++] = d.ok() ? d.embedding : null;
          v[k++] = tokens;
          break;
        case GENERATE:
          v[k++] = d.ok() && m.tokenizer != null ? text(d.generated) : null;
          v[k++] = d.ok() ? d.generated : null;
          v[k++] = tokens;
          break;
      }
      v[k] = d.error;
      return RowFactory.create(v);
    }

    private String text(int[] generated) {
      return m.tokenizer.decode(generated, 0, runner.textLength(generated));
    }
  }

  /**
   * The text of UTF-8 bytes, refusing invalid ones (Spark stores and casts strings without checking
   * them; replacing bad bytes would score different text than the row holds).
   *
   * @throws IllegalArgumentException naming the offset of the first invalid byte
   */
  static String decodeUtf8Strict(byte[] b) {
    CharsetDecoder dec = StandardCharsets.UTF_8.newDecoder(); // REPORT on malformed input
    ByteBuffer in = ByteBuffer.wrap(b);
    CharBuffer out = CharBuffer.allocate(b.length);
    CoderResult cr = dec.decode(in, out, true);
    if (!cr.isError()) {
      cr = dec.flush(out);
    }
    if (cr.isError()) {
      throw new IllegalArgumentException(
          "text is not valid UTF-8 (invalid byte sequence at byte offset " + in.position() + ")");
    }
    out.flip();
    return out.toString();
  }

  static String abbreviate(String s) {
    return s.length() <= 80 ? s : s.substring(0, 77) + "...";
  }
}
