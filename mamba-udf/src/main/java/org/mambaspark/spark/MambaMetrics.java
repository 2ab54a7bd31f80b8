package org.mambaspark.spark;

import java.io.Serializable;
import org.apache.spark.SparkContext;
import org.apache.spark.util.DoubleAccumulator;
import org.apache.spark.util.LongAccumulator;

/**
 * Named accumulators of a job (shown in the Spark UI's stage pages): documents, tokens, errors,
 * model loads, and the sums behind the mean loss. Tasks add once per window of rows; the driver
 * reads them for its progress line and summary. As with every accumulator updated in a
 * transformation, a retried task's partial updates may count twice: they are progress figures; the
 * output table is the result.
 */
public final class MambaMetrics implements Serializable {
  private static final long serialVersionUID = 1L;

  /** Rows processed (with or without an error). */
  public final LongAccumulator documents;

  /** Tokens of the rows processed (prompt tokens for generate). */
  public final LongAccumulator tokens;

  /** Rows that got an error. */
  public final LongAccumulator errors;

  /** Executor JVMs that loaded the model for this job (0 where it was cached by an earlier one). */
  public final LongAccumulator modelLoads;

  /** score: Σ cross-entropy over every predicted token, and the count of predicted tokens. */
  public final DoubleAccumulator lossSum;

  public final LongAccumulator predicted;

  /** generate: new tokens. */
  public final LongAccumulator generated;

  private MambaMetrics(SparkContext sc, String prefix) {
    documents = sc.longAccumulator(prefix + ".documents");
    tokens = sc.longAccumulator(prefix + ".tokens");
    errors = sc.longAccumulator(prefix + ".errors");
    modelLoads = sc.longAccumulator(prefix + ".modelLoads");
    lossSum = sc.doubleAccumulator(prefix + ".lossSum");
    predicted = sc.longAccumulator(prefix + ".predictedTokens");
    generated = sc.longAccumulator(prefix + ".generatedTokens");
  }

  /** Registers a fresh set named {@code mamba.<task>.*}. */
  public static MambaMetrics register(SparkContext sc, Task task) {
    return new MambaMetrics(sc, "mamba." + task.label);
  }

  /** Token-weighted mean loss over every scored document so far (NaN before any). */
  public double meanLoss() {
    long n = predicted.value();
    return n == 0 ? Double.NaN : lossSum.value() / n;
  }
}
