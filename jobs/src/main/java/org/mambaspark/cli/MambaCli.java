package org.mambaspark.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import org.mambaspark.io.CheckpointException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * {@code bin/mamba}: the command-line tool. Each subcommand is a thin shell over the engine: parse,
 * load, call, write. A user's mistake (bad flag, missing file, bad checkpoint, bad input) prints
 * one line {@code error: ...} and exits 2 (usage) or 1; only a bug prints a stack trace.
 */
@Command(
    name = "mamba",
    mixinStandardHelpOptions = true,
    version = "mamba-spark 0.1.0",
    description = "Mamba selective state-space language models on CPU and GPU, and as Spark jobs.",
    subcommands = {
      ForwardCommand.class,
      GenerateCommand.class,
      BenchCommand.class,
      InitCommand.class,
      TrainLocalCommand.class,
      ScoreCommand.class,
      EmbedCommand.class,
      GenerateCorpusCommand.class,
      BenchJobCommand.class,
      CompareCommand.class,
      org.mambaspark.jobs.TrainJob.class,
      org.mambaspark.jobs.BenchTrainJob.class
    })
public final class MambaCli implements Runnable {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    throw new CommandLine.ParameterException(spec.commandLine(), "missing subcommand");
  }

  public static void main(String[] args) {
    System.exit(execute(args));
  }

  /** Runs the CLI and returns its exit code (tests call this). */
  public static int execute(String... args) {
    CommandLine cl = new CommandLine(new MambaCli());
    cl.setExecutionExceptionHandler(
        (ex, cmd, parsed) -> {
          if (isUserError(ex)) {
            cmd.getErr().println("error: " + message(ex));
            return 1;
          }
          String failed = org.mambaspark.jobs.JobMain.sparkJobFailure(ex);
          if (failed != null) {
            cmd.getErr().println("error: " + failed);
            return 1;
          }
          throw ex;
        });
    cl.setParameterExceptionHandler(org.mambaspark.jobs.JobMain::usageError);
    return cl.execute(args);
  }

  static boolean isUserError(Throwable ex) {
    return ex instanceof IllegalArgumentException
        || ex instanceof CheckpointException
        || ex instanceof IOException
        || ex instanceof UncheckedIOException
        || ex instanceof IllegalStateException;
  }

  private static String message(Throwable ex) {
    String m = ex.getMessage();
    if (ex instanceof UncheckedIOException && ex.getCause() != null) {
      m = ex.getCause().toString();
    } else if (ex instanceof java.nio.file.NoSuchFileException) {
      m = "no such file: " + m;
    }
    return m == null ? ex.toString() : m;
  }
}
