package org.mambaspark.cli;

import java.util.concurrent.Callable;
import org.mambaspark.jobs.JobOptions;
import org.mambaspark.jobs.MambaJob;
import org.mambaspark.spark.Task;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/**
 * {@code bin/mamba score}: the score job (org.mambaspark.jobs.ScoreJob) in an embedded Spark,
 * master local[*] unless --master says otherwise.
 */
@Command(
    name = "score",
    mixinStandardHelpOptions = true,
    description =
        "Score a corpus in Spark (embedded, local[*] by default): loss (mean next-token"
            + " cross-entropy), perplexity, tokens, error per document. Same flags as spark-submit"
            + " --class org.mambaspark.jobs.ScoreJob.")
final class ScoreCommand implements Callable<Integer> {
  @Mixin JobOptions job;
  @Mixin JobOptions.Score score;

  @Override
  public Integer call() {
    MambaJob.run(Task.SCORE, job, score.settings(), "local[*]");
    return 0;
  }
}
