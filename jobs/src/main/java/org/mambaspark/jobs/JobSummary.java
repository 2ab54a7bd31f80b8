package org.mambaspark.jobs;

import java.util.Locale;
import org.mambaspark.spark.MambaMetrics;
import org.mambaspark.spark.Task;

/** What a job did, from its accumulators: the closing summary. */
public record JobSummary(
    Task task,
    String output,
    long documents,
    long tokens,
    long errors,
    long modelLoads,
    double meanLoss,
    long generatedTokens,
    double seconds) {

  static JobSummary of(Task task, String output, MambaMetrics m, double seconds) {
    return new JobSummary(
        task,
        output,
        m.documents.value(),
        m.tokens.value(),
        m.errors.value(),
        m.modelLoads.value(),
        m.meanLoss(),
        m.generated.value(),
        seconds);
  }

  public double tokensPerSecond() {
    return tokens / Math.max(seconds, 1e-9);
  }

  @Override
  public String toString() {
    StringBuilder b =
        new StringBuilder(
            String.format(
                Locale.ROOT,
                "mamba %s: %,d documents, %,d tokens, %,d errors in %.1f s (%,.0f documents/s,"
                    + " %,.0f tokens/s); model loaded by %d executor JVM(s) for this job",
                task.label,
                documents,
                tokens,
                errors,
                seconds,
                documents / Math.max(seconds, 1e-9),
                tokensPerSecond(),
                modelLoads));
    if (task == Task.SCORE && !Double.isNaN(meanLoss)) {
      b.append(
          String.format(
              Locale.ROOT, "; mean loss %.4f (perplexity %.2f)", meanLoss, Math.exp(meanLoss)));
    }
    if (task == Task.GENERATE) {
      b.append(String.format(Locale.ROOT, "; %,d new tokens", generatedTokens));
    }
    b.append("; output: ").append(output);
    return b.toString();
  }
}
