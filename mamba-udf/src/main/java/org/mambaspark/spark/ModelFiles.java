package org.mambaspark.spark;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Comparator;
import java.util.Optional;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.mambaspark.batch.DocumentRunner;
import org.mambaspark.io.Checkpoint;
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
   * Checks on the driver that {@code path} is a sound model directory, so that a wrong path or a
   * damaged file fails the job at once with one line instead of failing every task: config.json
   * valid, every tensor's dtype, shape and byte range against it and the file sizes ({@link
   * Checkpoint#validate}), the tokenizer loadable if there is one. Reads the headers, never the
   * weights' data: on a remote file system only the small files and the safetensors headers are
   * fetched, next to sparse stand-ins of the weight files' true sizes.
   *
   * @throws IllegalArgumentException naming the user's path (never a temporary copy) and what is
   *     wrong
   */
  public static Info inspect(String path, Configuration conf) {
    Path p = new Path(path);
    java.nio.file.Path tmp = null;
    java.nio.file.Path local = null;
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
      if ("file".equals(fs.getScheme())) {
        local = Paths.get(fs.makeQualified(p).toUri());
      } else {
        tmp = Files.createTempDirectory("mamba-inspect-");
        local = tmp;
        copyHeaders(fs, p, tmp);
      }
      MambaConfig config = Checkpoint.validate(local);
      Optional<String> tok;
      try (Tokenizer t = Tokenizers.forModel(local).orElse(null)) {
        tok = Optional.ofNullable(t == null ? null : t.describe());
      }
      return new Info(path, config, tok);
    } catch (IOException e) {
      throw new IllegalArgumentException("model " + path + ": cannot read it: " + e, e);
    } catch (RuntimeException e) {
      if (e instanceof IllegalArgumentException && local == null) {
        throw e; // one of the checks above, already naming the path
      }
      String m = userPaths(DocumentRunner.message(e), tmp, path);
      boolean named = m.contains(path) || m.contains(local.toString());
      throw new IllegalArgumentException(named ? m : "model " + path + ": " + m, e);
    } finally {
      if (tmp != null) {
        deleteRecursively(tmp);
      }
    }
  }

  /**
   * Fills {@code to} with stand-ins of the files of {@code dir} (any Hadoop file system): the small
   * files and every JSON file copied, the safetensors files as their headers followed by holes of
   * their true sizes. What a driver reads to check a checkpoint and locate its tensors ({@link
   * Checkpoint#locate}) without fetching the weights.
   */
  public static void copyHeaders(FileSystem fs, Path dir, java.nio.file.Path to)
      throws IOException {
    for (FileStatus f : fs.listStatus(dir)) {
      if (f.isFile()) {
        java.nio.file.Path dst = to.resolve(f.getPath().getName());
        String name = f.getPath().getName();
        if (name.endsWith(".json") || name.endsWith(".jsonl")) {
          fs.copyToLocalFile(false, f.getPath(), new Path(dst.toUri()), true);
        } else {
          standIn(fs, f, dst);
        }
      }
    }
  }

  /** Small files beyond this size get a sparse stand-in instead of a copy. */
  private static final long COPY_LIMIT = 16L << 20;

  /**
   * A local stand-in for a file of the model: small files copied; a safetensors file as its header
   * followed by a hole up to the true size (what {@link Checkpoint#validate} reads and checks);
   * other large files as a hole of their size.
   */
  private static void standIn(FileSystem fs, FileStatus f, java.nio.file.Path to)
      throws IOException {
    long len = f.getLen();
    String name = f.getPath().getName();
    if (!name.endsWith(".safetensors") && len <= COPY_LIMIT) {
      fs.copyToLocalFile(false, f.getPath(), new Path(to.toUri()), true);
      return;
    }
    try (RandomAccessFile out = new RandomAccessFile(to.toFile(), "rw")) {
      if (name.endsWith(".safetensors") && len >= 8) {
        try (FSDataInputStream in = fs.open(f.getPath())) {
          byte[] head = new byte[8];
          in.readFully(0, head);
          long n = ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN).getLong();
          // a header length that does not fit is SafetensorsFile's to report: copy what there is
          long keep = n < 0 || n > len - 8 || n > COPY_LIMIT ? 8 : 8 + n;
          byte[] header = new byte[(int) keep];
          in.readFully(0, header);
          out.write(header);
        }
      }
      out.setLength(len);
    }
  }

  /** A message with the local directory it names replaced by the user's path. */
  static String userPaths(String message, java.nio.file.Path local, String path) {
    if (local == null) {
      return message;
    }
    String p = path.endsWith("/") ? path.substring(0, path.length() - 1) : path;
    return message.replace(local.toString(), p);
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
