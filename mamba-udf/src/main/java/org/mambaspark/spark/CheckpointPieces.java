package org.mambaspark.spark;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.TaskContext;
import org.mambaspark.train.CheckpointLayout;
import org.mambaspark.train.ParameterSlices;
import scala.Tuple2;

/**
 * The two sides of writing a checkpoint from the optimizer's shards ({@link
 * ShardedTraining#writeCheckpoint}): each shard is cut at the files' boundaries ({@link
 * CheckpointLayout}: files of whole tensors, each a contiguous range of the flat parameter vector),
 * and the task of file k receives its pieces, orders them by slice and streams them into the model
 * file and the state file. A task holds one file's pieces, never the model.
 */
final class CheckpointPieces {
  private static final int BUFFER_BYTES = 1 << 20;

  private CheckpointPieces() {}

  /** A shard's pieces, keyed by the file they belong to. */
  static List<Tuple2<Integer, OptimizerShard>> cut(
      ParameterSlices sl, CheckpointLayout layout, OptimizerShard sh) {
    long from = sl.start(sh.slice), to = from + sh.w.length;
    List<Tuple2<Integer, OptimizerShard>> out = new ArrayList<>();
    for (int k = 0; k < layout.files(); k++) {
      long a = Math.max(from, layout.flatStart(k)), b = Math.min(to, layout.flatEnd(k));
      if (a < b) {
        int i = (int) (a - from), j = (int) (b - from);
        out.add(
            new Tuple2<>(
                k,
                new OptimizerShard(
                    sh.slice,
                    Arrays.copyOfRange(sh.w, i, j),
                    sh.m == null ? new float[j - i] : Arrays.copyOfRange(sh.m, i, j),
                    sh.v == null ? new float[j - i] : Arrays.copyOfRange(sh.v, i, j))));
      }
    }
    return out;
  }

  /**
   * Writes file k's model and state files into {@code dir} from its pieces, after checking that
   * they cover the file's range exactly once; returns (k, bytes written).
   */
  static Iterator<Tuple2<Integer, Long>> write(
      Iterator<Tuple2<Integer, OptimizerShard>> it,
      ParameterSlices sl,
      CheckpointLayout layout,
      Map<String, String> stateMetadata,
      String dir,
      Configuration conf)
      throws IOException {
    List<OptimizerShard> pieces = new ArrayList<>();
    int k = -1;
    while (it.hasNext()) {
      Tuple2<Integer, OptimizerShard> t = it.next();
      k = t._1();
      pieces.add(t._2());
    }
    if (pieces.isEmpty()) {
      return Collections.emptyIterator();
    }
    pieces.sort(Comparator.comparingInt(p -> p.slice));
    long at = layout.flatStart(k);
    for (OptimizerShard p : pieces) {
      long start = Math.max(sl.start(p.slice), layout.flatStart(k));
      if (start != at) {
        throw new IllegalStateException(
            "checkpoint file " + k + ": slice " + p.slice + " starts at " + start + ", not " + at);
      }
      at += p.w.length;
    }
    if (at != layout.flatEnd(k)) {
      throw new IllegalStateException(
          "checkpoint file " + k + ": pieces end at " + at + ", not " + layout.flatEnd(k));
    }
    Path d = new Path(dir);
    FileSystem fs = d.getFileSystem(conf);
    long bytes =
        stream(fs, d, layout.modelFile(k), layout.modelWriter(k).prefix(), pieces, true)
            + stream(
                fs,
                d,
                layout.stateFile(k),
                layout.stateWriter(k, stateMetadata).prefix(),
                pieces,
                false);
    return Collections.singletonList(new Tuple2<>(k, bytes)).iterator();
  }

  /**
   * One file: the prefix, then the pieces' weights (or their first moments, then their second),
   * little-endian, under a name of this task attempt's, renamed into place at the end.
   */
  private static long stream(
      FileSystem fs,
      Path dir,
      String name,
      byte[] prefix,
      List<OptimizerShard> pieces,
      boolean weights)
      throws IOException {
    long attempt = TaskContext.get() == null ? 0 : TaskContext.get().taskAttemptId();
    Path tmp = new Path(dir, "." + name + "." + attempt + ".tmp");
    Path dst = new Path(dir, name);
    long bytes = prefix.length;
    ByteBuffer buf = ByteBuffer.allocate(BUFFER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    FloatBuffer view = buf.asFloatBuffer();
    try (FSDataOutputStream out = fs.create(tmp, true)) {
      out.write(prefix);
      List<float[]> arrays = new ArrayList<>();
      for (OptimizerShard p : pieces) {
        arrays.add(weights ? p.w : p.m);
      }
      if (!weights) {
        for (OptimizerShard p : pieces) {
          arrays.add(p.v);
        }
      }
      for (float[] a : arrays) {
        for (int i = 0; i < a.length; i += view.capacity()) {
          int n = Math.min(view.capacity(), a.length - i);
          view.clear();
          view.put(a, i, n);
          out.write(buf.array(), 0, 4 * n);
          bytes += 4L * n;
        }
      }
    }
    fs.delete(dst, false);
    if (!fs.rename(tmp, dst)) {
      throw new IOException("could not rename " + tmp + " to " + dst);
    }
    return bytes;
  }
}
