package org.mambaspark.cli;

import org.mambaspark.ops.Parallel;
import picocli.CommandLine.Option;

/** Options every engine command takes. */
final class CommonOptions {
  @Option(names = "--threads", description = "CPU threads for the engine (default: all cores)")
  Integer threads;

  void apply() {
    if (threads != null) {
      if (threads <= 0) {
        throw new IllegalArgumentException("--threads must be positive, got " + threads);
      }
      Parallel.setThreads(threads);
    }
  }
}
