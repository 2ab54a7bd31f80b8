package org.mambaspark.spark;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.TreeMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.io.compress.CompressionCodec;
import org.apache.hadoop.io.compress.CompressionCodecFactory;

/**
 * Which reader a corpus needs — {@code text} (one document a line), {@code json} (JSON lines) or
 * {@code parquet} — when the user did not say: the one rule every job that reads a corpus uses.
 *
 * <p>A path (a file, a folder, or a glob) is judged by the data files it holds: names starting with
 * {@code _} or {@code .} ({@code _SUCCESS}, {@code .crc} files, {@code _temporary}) are skipped, as
 * Spark skips them, and folders are searched (partition folders such as {@code day=2026-11-30}). A
 * known extension decides a file ({@code .parquet}; {@code .json}, {@code .jsonl}, {@code .ndjson};
 * {@code .txt}, {@code .text}; each also behind a compression suffix such as {@code .gz}); any
 * other file is opened and its first bytes looked at: Parquet's {@code PAR1} magic, else JSON lines
 * when the first non-blank character is <code>{</code>, else text. Empty files decide nothing. All
 * files must agree; otherwise, or with no data file at all, one line says so and names {@code
 * --input-format}.
 *
 * <p>Works on any Hadoop file system (the path's own, from the configuration given).
 */
public final class InputFormats {
  /** The formats the jobs read. */
  public static final List<String> FORMATS = List.of("text", "json", "parquet");

  /** At most this many files without a known extension are opened (each costs a round trip). */
  static final int MAX_SNIFFED = 16;

  /** Bytes read from the start of a file to sniff it (after decompression). */
  private static final int SNIFF_BYTES = 4096;

  private static final String FLAG = "--input-format";

  /** What {@link #sniff(byte[])} says of a file that is none of the formats (ORC, Avro, ...). */
  static final String BINARY = "binary";

  private InputFormats() {}

  /**
   * The format to read {@code path} with: {@code given} when not empty (one of {@link #FORMATS}),
   * else {@link #detect}.
   *
   * @throws IllegalArgumentException one line naming the path and {@code --input-format} when the
   *     format cannot be told or {@code given} is not a format
   */
  public static String resolve(String given, String path, Configuration conf) {
    if (given != null && !given.isEmpty()) {
      if (!FORMATS.contains(given)) {
        throw new IllegalArgumentException(
            FLAG + " must be one of " + String.join(", ", FORMATS) + ", got '" + given + "'");
      }
      return given;
    }
    return detect(path, conf);
  }

  /**
   * The format of the data files at {@code path} (a file, a folder or a glob), by the rule in the
   * class comment.
   *
   * @throws IllegalArgumentException one line, naming {@code --input-format}, when the path does
   *     not exist, holds no data file, or holds files of different formats
   */
  public static String detect(String path, Configuration conf) {
    try {
      Path p = new Path(path);
      FileSystem fs = p.getFileSystem(conf);
      FileStatus[] roots = fs.globStatus(p);
      if (roots == null || roots.length == 0) {
        throw new IllegalArgumentException("input " + path + " does not exist");
      }
      // a path named literally is read whatever its name; what a glob matches is filtered as Spark
      // filters it
      boolean literal = path.chars().noneMatch(ch -> "*?[{".indexOf(ch) >= 0);
      List<FileStatus> files = new ArrayList<>();
      for (FileStatus r : roots) {
        collect(fs, r, files, literal);
      }
      // the format of each file, first named file kept per format for the message
      TreeMap<String, String> seen = new TreeMap<>();
      int sniffed = 0;
      CompressionCodecFactory codecs = new CompressionCodecFactory(conf);
      for (FileStatus f : files) {
        String format = byExtension(f.getPath().getName());
        if (format == null) {
          if (f.getLen() == 0 || sniffed >= MAX_SNIFFED) {
            continue;
          }
          sniffed++;
          format = sniff(fs, f.getPath(), codecs);
          if (format == null) {
            continue; // blank
          }
          if (format.equals(BINARY)) {
            throw new IllegalArgumentException(
                "input "
                    + path
                    + ": "
                    + f.getPath().getName()
                    + " is neither text, JSON lines nor Parquet (binary bytes at its start); the jobs"
                    + " read "
                    + String.join(", ", FORMATS)
                    + ": give "
                    + FLAG
                    + " if it is one of them");
          }
        }
        seen.putIfAbsent(format, f.getPath().getName());
      }
      if (seen.isEmpty()) {
        throw new IllegalArgumentException(
            "cannot tell the format of input "
                + path
                + ": it holds no data file (only empty, hidden or _-prefixed ones); give "
                + FLAG
                + " "
                + String.join("|", FORMATS));
      }
      if (seen.size() > 1) {
        List<String> kinds = new ArrayList<>();
        seen.forEach((format, file) -> kinds.add(format + " (" + file + ")"));
        throw new IllegalArgumentException(
            "input "
                + path
                + " mixes "
                + String.join(" and ", kinds)
                + " files: give "
                + FLAG
                + " "
                + String.join("|", FORMATS)
                + " or read them separately");
      }
      return seen.firstKey();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot list input " + path + ": " + e.getMessage(), e);
    }
  }

  /**
   * The data files under {@code st}, in name order; {@code named}: st is taken whatever its name.
   */
  private static void collect(FileSystem fs, FileStatus st, List<FileStatus> out, boolean named)
      throws IOException {
    String name = st.getPath().getName();
    if (!named && (name.startsWith("_") || name.startsWith("."))) {
      return;
    }
    if (!st.isDirectory()) {
      out.add(st);
      return;
    }
    FileStatus[] children = fs.listStatus(st.getPath());
    Arrays.sort(children, (a, b) -> a.getPath().getName().compareTo(b.getPath().getName()));
    for (FileStatus c : children) {
      collect(fs, c, out, false);
    }
  }

  /** The format a file's name says, or null when it says none. */
  static String byExtension(String fileName) {
    String n = fileName.toLowerCase(Locale.ROOT);
    for (String z : new String[] {".gz", ".bz2", ".zst", ".lz4", ".snappy", ".deflate", ".xz"}) {
      if (n.endsWith(z)) {
        n = n.substring(0, n.length() - z.length());
        break;
      }
    }
    if (n.endsWith(".parquet")) {
      return "parquet";
    }
    if (n.endsWith(".json") || n.endsWith(".jsonl") || n.endsWith(".ndjson")) {
      return "json";
    }
    if (n.endsWith(".txt") || n.endsWith(".text")) {
      return "text";
    }
    return null;
  }

  /** The format a file's first bytes show, or null for a blank file. */
  private static String sniff(FileSystem fs, Path file, CompressionCodecFactory codecs)
      throws IOException {
    CompressionCodec codec = codecs.getCodec(file);
    byte[] head;
    try (InputStream raw = fs.open(file);
        InputStream in = codec == null ? raw : codec.createInputStream(raw)) {
      head = in.readNBytes(SNIFF_BYTES);
    }
    return sniff(head);
  }

  /**
   * The format of a file that starts with {@code head}: parquet for its magic, {@link #BINARY} when
   * it holds a NUL byte (ORC, Avro, anything else that is not text), json when the first non-blank
   * character is <code>{</code>, null when all blank, else text.
   */
  static String sniff(byte[] head) {
    if (head.length >= 4 && head[0] == 'P' && head[1] == 'A' && head[2] == 'R' && head[3] == '1') {
      return "parquet";
    }
    for (byte b : head) {
      if (b == 0) {
        return BINARY;
      }
    }
    int i = 0;
    if (head.length >= 3 && (head[0] & 0xff) == 0xEF && (head[1] & 0xff) == 0xBB) {
      i = 3; // a UTF-8 byte order mark
    }
    for (; i < head.length; i++) {
      byte b = head[i];
      if (b != ' ' && b != '\t' && b != '\n' && b != '\r') {
        return b == '{' ? "json" : "text";
      }
    }
    return null;
  }
}
