package org.mambaspark.jobs;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.io.ConfigJson;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.spark.ModelFiles;
import org.mambaspark.tokenizer.Tokenizers;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A training run's output directory on any Hadoop file system: refuses to train into another run's
 * output, finds the newest {@code checkpoint-N}, checks that a resumed run is the same run (model
 * shape, tokenizer, data, batch, seed) naming what differs, and writes checkpoints atomically (the
 * executors' files and the driver's small ones gathered in {@code .checkpoint-N.tmp}, then
 * renamed), keeping the newest {@code keep}; the last one's model, metrics and loss curve are also
 * renamed into place at the top.
 */
final class TrainCheckpoints {
  private static final Logger LOG = LoggerFactory.getLogger(TrainCheckpoints.class);

  /** The folder in the output where the sharded optimizer's state is checkpointed. */
  static final String STATE_DIR = ".optimizer-state";

  final FileSystem fs;
  final Path out;
  private final java.nio.file.Path work;
  private final int keep;
  private boolean replacing; // --overwrite of an existing output, not yet deleted

  private TrainCheckpoints(FileSystem fs, Path out, java.nio.file.Path work, int keep) {
    this.fs = fs;
    this.out = out;
    this.work = work;
    this.keep = keep;
  }

  /**
   * The output directory, checked: an existing non-empty one is another run's unless the run
   * resumes ({@code --resume}, {@code --auto-resume}) or replaces it ({@code --overwrite}: its
   * contents are deleted when the first checkpoint is written).
   */
  static TrainCheckpoints open(
      Configuration hconf,
      String output,
      int keep,
      boolean resume,
      boolean autoResume,
      boolean overwrite,
      java.nio.file.Path work)
      throws IOException {
    Path out = new Path(output);
    FileSystem fs = out.getFileSystem(hconf);
    boolean exists = fs.exists(out) && fs.listStatus(out).length > 0;
    if (exists && !resume && !autoResume) {
      if (!overwrite) {
        throw new IllegalArgumentException(
            "--output "
                + output
                + " exists and is not empty: pass --resume (or --auto-resume) to continue the run"
                + " in it, or --overwrite to replace it");
      }
      LOG.warn("--overwrite: {} is replaced when the first checkpoint is written", output);
    }
    TrainCheckpoints c = new TrainCheckpoints(fs, out, work, keep);
    c.replacing = exists && overwrite && !resume && !autoResume;
    return c;
  }

  /**
   * Deletes what --overwrite replaces, once the run has something to write (a run that fails before
   * loses nothing), except the optimizer state's folder, which this run may be using.
   */
  private void replaceOnce() throws IOException {
    if (!replacing) {
      return;
    }
    for (FileStatus st : fs.listStatus(out)) {
      if (!st.getPath().getName().equals(STATE_DIR)) {
        fs.delete(st.getPath(), true);
      }
    }
    replacing = false;
    LOG.warn("--overwrite: deleted the previous contents of {}", out);
  }

  /** The newest checkpoint-N directory of the output, or null. */
  Path newest() throws IOException {
    if (!fs.exists(out)) {
      return null;
    }
    Path best = null;
    for (FileStatus st : fs.listStatus(out)) {
      String name = st.getPath().getName();
      if (st.isDirectory()
          && name.matches("checkpoint-\\d+")
          && (best == null || name.compareTo(best.getName()) > 0)) {
        best = st.getPath();
      }
    }
    return best;
  }

  /**
   * A local copy of a checkpoint directory on any file system (the directory itself, absolute, on a
   * local one: executors resolve a relative path against their own working directory).
   */
  java.nio.file.Path local(Path dir, String name) throws IOException {
    FileSystem dirFs = dir.getFileSystem(fs.getConf());
    if ("file".equals(dirFs.getScheme())) {
      return java.nio.file.Path.of(dirFs.makeQualified(dir).toUri());
    }
    java.nio.file.Path local = work.resolve(name);
    dirFs.copyToLocalFile(false, dir, new Path(local.toUri()), true);
    return local;
  }

  /**
   * A local directory with a checkpoint's small files and its safetensors files' headers (the
   * directory itself on a local file system): what the driver reads to check a checkpoint and to
   * locate its tensors without fetching the weights.
   */
  java.nio.file.Path headers(Path dir, String name) throws IOException {
    FileSystem dirFs = dir.getFileSystem(fs.getConf());
    if ("file".equals(dirFs.getScheme())) {
      return java.nio.file.Path.of(dirFs.makeQualified(dir).toUri());
    }
    java.nio.file.Path local = work.resolve(name);
    Files.createDirectories(local);
    ModelFiles.copyHeaders(dirFs, dir, local);
    return local;
  }

  /**
   * What makes a run the same run, stored in its training state and compared on resume: the model
   * shape, the tokenizer, the input (path, sequence length, sequences read) and the global batch.
   */
  static Map<String, String> identity(
      MambaConfig config, String tokenizer, String input, int seqLen, long sequences, int batch) {
    Map<String, String> m = new LinkedHashMap<>();
    m.put("config", config.toString());
    m.put("tokenizer", tokenizer);
    m.put("input", input);
    m.put("seq_len", Integer.toString(seqLen));
    m.put("sequences", Long.toString(sequences));
    m.put("global_batch", Integer.toString(batch));
    return m;
  }

  /**
   * Fails when a checkpoint's stored identity differs from this run's, naming each difference; keys
   * the checkpoint does not record (an older or single-process run) are not compared.
   */
  static void checkSameRun(Path checkpoint, Map<String, String> stored, Map<String, String> now) {
    List<String> diffs = new ArrayList<>();
    for (Map.Entry<String, String> e : now.entrySet()) {
      String was = stored.get(e.getKey());
      if (was != null && !was.equals(e.getValue())) {
        diffs.add(e.getKey() + " " + was + " there, " + e.getValue() + " now");
      }
    }
    if (!diffs.isEmpty()) {
      throw new IllegalArgumentException(
          "cannot resume from "
              + checkpoint
              + ": not the same run ("
              + String.join("; ", diffs)
              + "); use another --output, or --overwrite to start over");
    }
  }

  /** A tokenizer's fingerprint: "bytes", "none", or the SHA-256 of its files. */
  static String tokenizerId(java.nio.file.Path dir, int vocabSize) throws IOException {
    if (dir != null) {
      MessageDigest d;
      try {
        d = MessageDigest.getInstance("SHA-256");
      } catch (NoSuchAlgorithmException e) {
        throw new IllegalStateException(e);
      }
      boolean any = false;
      for (String f : new String[] {Tokenizers.TOKENIZER_JSON, Tokenizers.TOKENIZER_CONFIG}) {
        java.nio.file.Path p = dir.resolve(f);
        if (Files.exists(p)) {
          d.update(Files.readAllBytes(p));
          any = true;
        }
      }
      if (any) {
        return "sha256:" + HexFormat.of().formatHex(d.digest()).substring(0, 16);
      }
    }
    return vocabSize >= 256 ? Tokenizers.BYTES : "none";
  }

  /** What a checkpoint holds besides the model and the optimizer. */
  record Extras(
      long seed,
      long skipped,
      Map<String, String> identity,
      java.nio.file.Path tokenizerDir,
      List<String> metrics) {}

  /**
   * Writes the model and the training state of a checkpoint: into {@code local} (the driver's small
   * files, or all of them when the driver holds the model), or straight into {@code tmp}, the
   * checkpoint's temporary directory on the output's file system (the executors' files).
   */
  interface StateFiles {
    void write(java.nio.file.Path local, Path tmp) throws IOException;
  }

  /**
   * Writes checkpoint-N atomically: config.json, the model and the training state ({@code files}),
   * the tokenizer, the metrics and, when {@code chart} is given, the loss curve, all into {@code
   * .checkpoint-N.tmp}, which is renamed into place once complete; keeps the newest {@code keep}
   * (and {@code spare}, a checkpoint the run may still read). For the last, copies the model,
   * metrics and curve to the top of the output, each file renamed into place.
   */
  void write(
      long step,
      MambaConfig config,
      Extras x,
      boolean last,
      java.util.function.Consumer<java.nio.file.Path> chart,
      StateFiles files,
      Path spare)
      throws IOException {
    String name = String.format("checkpoint-%08d", step);
    java.nio.file.Path local = work.resolve(name);
    org.apache.hadoop.fs.FileUtil.fullyDelete(local.toFile());
    Files.createDirectories(local);
    replaceOnce();
    fs.mkdirs(out);
    Path tmp = new Path(out, "." + name + ".tmp");
    Path dst = new Path(out, name);
    fs.delete(tmp, true);
    fs.mkdirs(tmp);
    ConfigJson.write(config, local.resolve(Checkpoint.CONFIG));
    files.write(local, tmp);
    if (x.tokenizerDir() != null) {
      for (String f : new String[] {Tokenizers.TOKENIZER_JSON, Tokenizers.TOKENIZER_CONFIG}) {
        java.nio.file.Path t = x.tokenizerDir().resolve(f);
        if (Files.exists(t)) {
          Files.copy(t, local.resolve(f), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
      }
    } else if (config.vocabSize >= 256) {
      Tokenizers.writeByteTokenizerMarker(local);
    }
    Files.write(local.resolve(TrainJob.METRICS), x.metrics(), StandardCharsets.UTF_8);
    if (last && chart != null) {
      chart.accept(local);
    }
    try (java.util.stream.Stream<java.nio.file.Path> made = Files.list(local)) {
      for (java.nio.file.Path f : (Iterable<java.nio.file.Path>) made::iterator) {
        fs.copyFromLocalFile(
            false, true, new Path(f.toUri()), new Path(tmp, f.getFileName().toString()));
      }
    }
    for (FileStatus st : fs.listStatus(tmp)) { // a failed task attempt's unfinished file
      if (st.getPath().getName().startsWith(".") && st.getPath().getName().endsWith(".tmp")) {
        fs.delete(st.getPath(), false);
      }
    }
    if (fs.exists(dst)) {
      fs.delete(dst, true);
    }
    rename(tmp, dst);
    LOG.info("checkpoint {} written to {}", step, dst);
    List<String> names = new ArrayList<>();
    for (FileStatus st : fs.listStatus(out)) {
      if (st.isDirectory() && st.getPath().getName().matches("checkpoint-\\d+")) {
        names.add(st.getPath().getName());
      }
    }
    names.sort(null);
    for (int i = 0; i < names.size() - Math.max(1, keep); i++) {
      if (spare == null || !names.get(i).equals(spare.getName())) {
        fs.delete(new Path(out, names.get(i)), true);
      }
    }
    if (last) {
      publish(dst);
    }
    org.apache.hadoop.fs.FileUtil.fullyDelete(local.toFile());
  }

  /**
   * The final model at the top of the output: config, weights (one file, or the index and its
   * shards), metrics, curve and tokenizer copied from the checkpoint, each file renamed into place;
   * weight files of another layout left there by an earlier run are removed.
   */
  private void publish(Path checkpoint) throws IOException {
    List<String> published = new ArrayList<>();
    for (FileStatus st : fs.listStatus(checkpoint)) {
      String f = st.getPath().getName();
      if (st.isFile() && !f.startsWith("training_state")) {
        Path t = new Path(out, "." + f + ".tmp");
        Path d = new Path(out, f);
        org.apache.hadoop.fs.FileUtil.copy(fs, st.getPath(), fs, t, false, true, fs.getConf());
        fs.delete(d, false);
        rename(t, d);
        published.add(f);
      }
    }
    for (FileStatus st : fs.listStatus(out)) {
      String f = st.getPath().getName();
      if (st.isFile() && f.startsWith("model") && !published.contains(f)) {
        fs.delete(st.getPath(), false);
      }
    }
  }

  private void rename(Path from, Path to) throws IOException {
    if (!fs.rename(from, to)) {
      throw new IOException("could not rename " + from + " to " + to);
    }
  }
}
