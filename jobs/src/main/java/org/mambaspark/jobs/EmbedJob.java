package org.mambaspark.jobs;

import java.util.concurrent.Callable;
import org.mambaspark.spark.Task;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/**
 * {@code spark-submit --class org.mambaspark.jobs.EmbedJob mamba-spark.jar --model M --input IN
 * --output OUT [--pooling mean|last]}: per document, {@code embedding} (array&lt;float&gt;, the
 * final hidden state after norm_f, pooled), {@code tokens}, {@code error}.
 */
@Command(
    name = "embed",
    mixinStandardHelpOptions = true,
    description = "Embed a corpus: embedding (pooled final hidden state), tokens, error.")
public final class EmbedJob implements Callable<Integer> {
  @Mixin JobOptions job;
  @Mixin JobOptions.Embed embed;

  @Override
  public Integer call() {
    MambaJob.run(Task.EMBED, job, embed.settings(), null);
    return 0;
  }

  public static void main(String[] args) {
    System.exit(JobMain.execute(new EmbedJob(), args));
  }
}
