package org.mambaspark.jobs;

import java.util.concurrent.Callable;
import org.mambaspark.spark.Task;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/**
 * {@code spark-submit --class org.mambaspark.jobs.GenerateJob mamba-spark.jar --model M --input IN
 * --output OUT [--max-new-tokens N --temperature T ...]}: per prompt, {@code generated_text},
 * {@code generated_ids}, {@code tokens} (of the prompt), {@code error}.
 */
@Command(
    name = "generate-corpus",
    mixinStandardHelpOptions = true,
    description =
        "Continue every prompt of a corpus: generated_text, generated_ids, tokens, error (greedy"
            + " by default).")
public final class GenerateJob implements Callable<Integer> {
  @Mixin JobOptions job;
  @Mixin JobOptions.Generate generate;

  @Override
  public Integer call() {
    MambaJob.run(Task.GENERATE, job, generate.settings(), null);
    return 0;
  }

  public static void main(String[] args) {
    System.exit(JobMain.execute(new GenerateJob(), args));
  }
}
