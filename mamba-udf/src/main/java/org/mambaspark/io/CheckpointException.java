package org.mambaspark.io;

import java.nio.file.Path;

/**
 * Any failure to read or write a checkpoint, safetensors file or config.json: missing or corrupt
 * files, shapes that disagree with the config, unsupported formats. Unchecked, so that callers that
 * cannot recover (most of them: a Spark task, a command-line tool) need not declare it. The message
 * always starts with the file it is about, and names the tensor or field where one is involved.
 */
public class CheckpointException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final transient Path file;

  public CheckpointException(Path file, String detail) {
    super(file + ": " + detail);
    this.file = file;
  }

  public CheckpointException(Path file, String detail, Throwable cause) {
    super(file + ": " + detail, cause);
    this.file = file;
  }

  /** The file (or directory) the failure is about. */
  public Path file() {
    return file;
  }
}
