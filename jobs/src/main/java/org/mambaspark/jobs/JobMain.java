package org.mambaspark.jobs;

import picocli.CommandLine;

/**
 * The spark-submit mains' shared entry: a user's mistake (bad flag, missing model or input,
 * existing output) prints one {@code error: ...} line and exits 1, so that the driver log shows
 * what to fix; anything else keeps its stack trace.
 */
public final class JobMain {
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
    cl.setParameterExceptionHandler(JobMain::usageError);
    return cl.execute(args);
  }

  /**
   * A mistyped or missing flag: one line naming it and where the usage is, instead of picocli's
   * whole usage text.
   */
  public static int usageError(CommandLine.ParameterException ex, String[] args) {
    CommandLine cmd = ex.getCommandLine();
    cmd.getErr()
        .println(
            "error: "
                + ex.getMessage()
                + " ("
                + cmd.getCommandSpec().qualifiedName()
                + " --help for the flags)");
    return cmd.getCommandSpec().exitCodeOnInvalidInput();
  }
}
