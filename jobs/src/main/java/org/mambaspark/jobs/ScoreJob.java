package org.mambaspark.jobs;

import java.util.concurrent.Callable;
import org.mambaspark.spark.Task;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/**
 * {@code spark-submit --class org.mambaspark.jobs.ScoreJob mamba-spark.jar --model M --input IN
 * --output OUT}: per document, the mean next-token cross-entropy ({@code loss}), {@code
 * perplexity}, {@code tokens} (and {@code logprobs} with --logprobs), and {@code error}.
 */
@Command(
    name = "score",
    mixinStandardHelpOptions = true,
    description =
        "Score a corpus: loss (mean next-token cross-entropy), perplexity, tokens, error per"
            + " document.")
public final class ScoreJob implements Callable<Integer> {
  @Mixin JobOptions job;
  @Mixin JobOptions.Score score;

  @Override
  public Integer call() {
    MambaJob.run(Task.SCORE, job, score.settings(), null);
    return 0;
  }

  public static void main(String[] args) {
    System.exit(JobMain.execute(new ScoreJob(), args));
  }
}
