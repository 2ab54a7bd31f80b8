package org.mambaspark.jobs;

import java.util.List;
import org.apache.spark.SparkException;
import picocli.CommandLine;

/**
 * The spark-submit mains' shared entry: a user's mistake (bad flag, missing model or input,
 * existing output) and a Spark job that gave up print one {@code error: ...} line and exit 1, so
 * that the driver log shows what to fix; anything else keeps its stack trace.
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
          String failed = sparkJobFailure(ex);
          if (failed != null) {
            cmd.getErr().println("error: " + failed);
            return 1;
          }
          throw ex;
        });
    cl.setParameterExceptionHandler(JobMain::usageError);
    return cl.execute(args);
  }

  /**
   * One line for a Spark job that gave up (its tasks failed spark.task.maxFailures times, or its
   * stage lost its executors too often), or null when ex is something else. Spark's reason is the
   * first line of its message (and the next, where the first ends in a colon); the tasks' own
   * failures and stack traces are already in the driver log above it, so the driver's stack trace
   * through Spark's scheduler would add nothing.
   */
  public static String sparkJobFailure(Throwable ex) {
    for (Throwable t = ex; t != null; t = t.getCause()) {
      if (t instanceof SparkException) {
        List<String> lines = String.valueOf(t.getMessage()).strip().lines().toList();
        String reason = lines.get(0).strip();
        if (reason.endsWith(":") && lines.size() > 1) { // "... Most recent failure reason:"
          reason += " " + lines.get(1).strip();
        }
        return "the Spark job failed: "
            + reason
            + " (the task failures are logged above; an executor that exited with code 52 ran out"
            + " of memory: raise spark.executor.memory or make the batches smaller)";
      }
    }
    return null;
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
