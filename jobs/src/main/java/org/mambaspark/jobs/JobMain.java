package org.mambaspark.jobs;

import picocli.CommandLine;

/**
 * The spark-submit mains' shared entry: a user's mistake (bad flag, missing model or input,
 * existing output) prints one {@code error: ...} line and exits 1, so that the driver log shows
 * what to fix; anything else keeps its stack trace.
 */
final class JobMain {
  private JobMain() {}

  static int execute(Object command, String... args) {
    CommandLine cl = new CommandLine(command);
    cl.setExecutionExceptionHandler(
        (ex, cmd, parsed) -> {
          if (ex instanceof IllegalArgumentException || ex instanceof IllegalStateException) {
            cmd.getErr().println("error: " + ex.getMessage());
            return 1;
          }
          throw ex;
        });
    return cl.execute(args);
  }
}
