package org.mambaspark.spark;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Comparator;
import java.util.Optional;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.io.ConfigJson;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.tokenizer.Tokenizer;
import org.mambaspark.tokenizer.Tokenizers;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A model directory on any Hadoop file system ({@code file:}, {@code hdfs:}, {@code s3a:} ...),
 * made readable by the engine, which reads local files: a local directory is used where it is; any
 * other is copied once per JVM to a temporary directory (deleted when the JVM exits).
 */
public final class ModelFiles {
  private static final Logger LOG = LoggerFactory.getLogger(ModelFiles.class);

  /** What the driver learns about a model before any task starts. */
  public record Info(String path, MambaConfig config, Optional<String> tokenizer) {}

  private ModelFiles() {}

  /**
   * Checks on the driver that {@code path} is a model directory (config.json valid, weights
   * present, tokenizer loadable if there is one), so that a wrong path fails the job at once with a
   * clear message instead of failing every task.
   *
   * @throws IllegalArgumentException naming the path and what is missing
   */
  public static Info inspect(String path, Configuration conf) {
    Path p = new Path(path);
    java.nio.file.Path tmp = null;
    try {
      FileSystem fs = p.getFileSystem(conf);
      if (!fs.exists(p)) {
        throw new IllegalArgumentException(
            "model " + path + " does not exist (" + MambaSettings.MODEL.flag() + ")");
      }
      if (!fs.getFileStatus(p).isDirectory()) {
        throw new IllegalArgumentException(
            "model "
                + path
                + " is not a directory: a model directory holds config.json and"
                + " model.safetensors (Hugging Face layout)");
      }
      if (!fs.exists(new Path(p, Checkpoint.CONFIG))) {
        throw new IllegalArgumentException(
            "model " + path + " has no " + Checkpoint.CONFIG + ": not a model directory");
      }
      if (!fs.exists(new Path(p, Checkpoint.WEIGHTS))
          && !fs.exists(new Path(p, Checkpoint.INDEX))) {
        throw new IllegalArgumentException(
            "model "
                + path
                + " has neither "
                + Checkpoint.WEIGHTS
                + " nor "
                + Checkpoint.INDEX
                + ": no weights");
      }
      tmp = Files.createTempDirectory("mamba-inspect-");
      for (String name :
          new String[] {
            Checkpoint.CONFIG, Tokenizers.TOKENIZER_CONFIG, Tokenizers.TOKENIZER_JSON
          }) {
        Path f = new Path(p, name);
        if (fs.exists(f)) {
          fs.copyToLocalFile(false, f, new Path(tmp.resolve(name).toUri()), true);
        }
      }
      MambaConfig config = ConfigJson.read(tmp.resolve(Checkpoint.CONFIG));
      Optional<String> tok;
      try (Tokenizer t = Tokenizers.forModel(tmp).orElse(null)) {
        tok = Optional.ofNullable(t == null ? null : t.describe());
      }
      return new Info(path, config, tok);
    } catch (IOException e) {
      throw new IllegalArgumentException("model " + path + ": cannot read it: " + e, e);
    } finally {
      if (tmp != null) {
        deleteRecursively(tmp);
      }
    }
  }

  /**
   * The local directory holding the model at {@code path}: the directory itself on a local file
   * system, else a fresh temporary copy (the caller caches it: once per JVM).
   */
  static java.nio.file.Path localize(String path, Configuration conf) {
    Path p = new Path(path);
    try {
      FileSystem fs = p.getFileSystem(conf);
      if ("file".equals(fs.getScheme())) {
        return Paths.get(fs.makeQualified(p).toUri());
      }
      long t0 = System.nanoTime();
      java.nio.file.Path tmp = Files.createTempDirectory("mamba-model-");
      Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteRecursively(tmp)));
      long bytes = 0;
      for (FileStatus s : fs.listStatus(p)) {
        if (s.isFile()) {
          fs.copyToLocalFile(
              false, s.getPath(), new Path(tmp.resolve(s.getPath().getName()).toUri()), true);
          bytes += s.getLen();
        }
      }
      LOG.info(
          "copied model {} to {} ({} MB, {} ms)",
          path,
          tmp,
          bytes >> 20,
          (System.nanoTime() - t0) / 1_000_000);
      return tmp;
    } catch (IOException e) {
      throw new UncheckedIOException("model " + path + ": cannot copy it to local disk", e);
    }
  }

  static void deleteRecursively(java.nio.file.Path dir) {
    try (Stream<java.nio.file.Path> s = Files.walk(dir)) {
      s.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
    } catch (IOException e) {
      LOG.debug("could not delete {}: {}", dir, e.toString());
    }
  }
}
