package org.mambaspark.cli;

import java.util.concurrent.Callable;
import org.mambaspark.jobs.JobOptions;
import org.mambaspark.jobs.MambaJob;
import org.mambaspark.spark.Task;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** {@code bin/mamba embed}: the embed job (org.mambaspark.jobs.EmbedJob) in an embedded Spark. */
@Command(
    name = "embed",
    mixinStandardHelpOptions = true,
    description =
        "Embed a corpus in Spark (embedded, local[*] by default): embedding (pooled final hidden"
            + " state), tokens, error. Same flags as spark-submit --class"
            + " org.mambaspark.jobs.EmbedJob.")
final class EmbedCommand implements Callable<Integer> {
  @Mixin JobOptions job;
  @Mixin JobOptions.Embed embed;

  @Override
  public Integer call() {
    MambaJob.run(Task.EMBED, job, embed.settings(), "local[*]");
    return 0;
  }
}
