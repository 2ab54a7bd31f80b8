package org.mambaspark.cli;

import java.util.concurrent.Callable;
import org.mambaspark.jobs.JobOptions;
import org.mambaspark.jobs.MambaJob;
import org.mambaspark.spark.Task;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/**
 * {@code bin/mamba generate-corpus}: the generate job (org.mambaspark.jobs.GenerateJob) in an
 * embedded Spark. ({@code bin/mamba generate} stays the one-prompt engine command.)
 */
@Command(
    name = "generate-corpus",
    mixinStandardHelpOptions = true,
    description =
        "Continue every prompt of a corpus in Spark (embedded, local[*] by default):"
            + " generated_text, generated_ids, tokens, error. Same flags as spark-submit --class"
            + " org.mambaspark.jobs.GenerateJob. For one prompt, use 'generate'.")
final class GenerateCorpusCommand implements Callable<Integer> {
  @Mixin JobOptions job;
  @Mixin JobOptions.Generate generate;

  @Override
  public Integer call() {
    MambaJob.run(Task.GENERATE, job, generate.settings(), "local[*]");
    return 0;
  }
}
