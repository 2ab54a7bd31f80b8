package org.mambaspark.jobs;

import java.io.IOException;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A job's output directory, replaced only by a finished job: the table is written to a staging
 * directory beside it (hidden by its leading dot from Spark's readers), and {@link #commit} swaps
 * it in by renames once the write has succeeded. A job that fails at any point leaves an existing
 * output as it was, on any Hadoop file system; {@link #abort} removes the staging directory.
 */
final class Output {
  private static final Logger LOG = LoggerFactory.getLogger(Output.class);

  private final FileSystem fs;
  private final Path target;
  private final Path staging;
  private boolean committed;

  private Output(FileSystem fs, Path target, Path staging) {
    this.fs = fs;
    this.target = target;
    this.staging = staging;
  }

  /**
   * Checks that {@code path} may be written (absent, or {@code overwrite}) and makes the staging
   * directory beside it, which also proves the directory writable.
   *
   * @throws IllegalArgumentException naming the output and what is wrong
   */
  static Output prepare(String path, boolean overwrite, Configuration conf) {
    Path target = new Path(path);
    try {
      FileSystem fs = target.getFileSystem(conf);
      if (fs.exists(target)) {
        if (!overwrite) {
          throw new IllegalArgumentException(
              "output " + path + " already exists (pass --overwrite to replace it)");
        }
        if (!fs.getFileStatus(target).isDirectory()) {
          throw new IllegalArgumentException(
              "output " + path + " is a file: the output is a directory of part files");
        }
      }
      Path parent = target.getParent();
      if (parent == null) {
        throw new IllegalArgumentException("output " + path + " is a root directory");
      }
      Path staging = sibling(target, "staging");
      if (!fs.mkdirs(staging)) {
        throw new IllegalArgumentException(
            "cannot write output " + path + ": cannot create a directory in " + parent);
      }
      return new Output(fs, target, staging);
    } catch (IOException e) {
      throw new IllegalArgumentException(
          "cannot write output " + path + ": " + firstLine(e.getMessage()), e);
    }
  }

  private static Path sibling(Path target, String what) {
    return new Path(
        target.getParent(), "." + target.getName() + ".mamba-" + what + "-" + UUID.randomUUID());
  }

  /** Where the job writes its table. */
  String staging() {
    return staging.toString();
  }

  /**
   * Puts the staged table in the output's place: the old output, if any, is renamed aside, the
   * staging directory renamed to the output, then the old one deleted. If the second rename fails,
   * the old output is renamed back.
   */
  void commit() {
    try {
      Path old = null;
      if (fs.exists(target)) {
        old = sibling(target, "replaced");
        if (!fs.rename(target, old)) {
          throw new IllegalStateException("cannot replace output " + target + ": rename failed");
        }
      }
      if (!fs.rename(staging, target)) {
        if (old != null) {
          fs.rename(old, target);
        }
        throw new IllegalStateException(
            "cannot move the finished output from " + staging + " to " + target);
      }
      committed = true;
      if (old != null && !fs.delete(old, true)) {
        LOG.warn("could not delete the replaced output, now at {}", old);
      }
    } catch (IOException e) {
      throw new IllegalStateException("cannot replace output " + target + ": " + e, e);
    }
  }

  /** Removes the staging directory unless it became the output; safe to call more than once. */
  void abort() {
    if (committed) {
      return;
    }
    try {
      fs.delete(staging, true);
    } catch (IOException e) {
      LOG.warn("could not delete the staging directory {}: {}", staging, e.toString());
    }
  }

  static String firstLine(String m) {
    if (m == null) {
      return "";
    }
    int nl = m.indexOf('\n');
    return nl < 0 ? m : m.substring(0, nl);
  }
}
