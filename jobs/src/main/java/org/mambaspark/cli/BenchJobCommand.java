package org.mambaspark.cli;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import org.mambaspark.jobs.BenchJob;
import org.mambaspark.jobs.JobOptions;
import org.mambaspark.spark.MambaSettings;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code bin/mamba bench-job}: the score job's tokens/s against the engine called directly on the
 * same documents in one process. Last line: {@code job/direct: X%}.
 */
@Command(
    name = "bench-job",
    mixinStandardHelpOptions = true,
    description =
        "Score-job throughput vs the engine called directly on the same random documents, in one"
            + " process. Last line: job/direct: <percent>.")
final class BenchJobCommand implements Callable<Integer> {
  @Option(
      names = "--preset",
      defaultValue = "mamba-130m",
      description = "shape for random weights when no --model is given (default mamba-130m)")
  String preset;

  @Option(names = "--docs", defaultValue = "32", description = "documents (32)")
  int docs;

  @Option(names = "--doc-min-tokens", defaultValue = "128", description = "shortest document (128)")
  int minTokens;

  @Option(names = "--doc-max-tokens", defaultValue = "512", description = "longest document (512)")
  int maxTokens;

  @Option(names = "--seed", defaultValue = "1", description = "weights and documents seed")
  long seed;

  @Mixin JobOptions job;

  @Override
  public Integer call() throws Exception {
    Map<String, String> settings = new LinkedHashMap<>(job.settings());
    String model = settings.remove(MambaSettings.MODEL.key());
    BenchJob.Result r =
        BenchJob.run(
            model == null ? null : Path.of(model),
            preset,
            docs,
            minTokens,
            maxTokens,
            seed,
            job.masterOr("local[*]"),
            settings);
    System.out.printf("job/direct: %.1f%%%n", 100 * r.jobWarm() / r.direct());
    return 0;
  }
}
