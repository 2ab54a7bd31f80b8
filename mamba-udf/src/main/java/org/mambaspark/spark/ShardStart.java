package org.mambaspark.spark;

import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.util.SerializableConfiguration;
import org.mambaspark.io.SafetensorsFile;
import org.mambaspark.io.TensorLocation;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.train.ParameterSlices;

/**
 * Where the sharded optimizer's starting shards come from, made by each shard's own task on its
 * executor, so the driver never holds the weights: a fresh model's values for the slice alone
 * ({@link Initialization.Ranges}: the same floats whatever the slice count), or the slice's byte
 * ranges of a checkpoint's safetensors files on any Hadoop file system (the weights, and on resume
 * both moments), read with positioned reads. Holds what the driver learnt from the headers (one
 * {@link TensorLocation} a tensor), never data. A recomputed shard (a lost executor before the
 * state was checkpointed) is made again the same way.
 */
public final class ShardStart implements Serializable {
  private static final long serialVersionUID = 1L;

  /** Bytes read at once: bounds the task's buffer, whatever the tensor's size. */
  private static final int CHUNK_BYTES = 8 << 20;

  private final MambaConfig config;
  private final long seed;
  private final String dir; //                  the checkpoint read, or null
  private final TensorLocation[] weights; //     null: a fresh model
  private final TensorLocation[][] moments; //  null: zero moments
  private final SerializableConfiguration conf;

  private ShardStart(
      MambaConfig config,
      long seed,
      String dir,
      TensorLocation[] weights,
      TensorLocation[][] moments,
      Configuration conf) {
    this.config = config;
    this.seed = seed;
    this.dir = dir;
    this.weights = weights;
    this.moments = moments;
    this.conf = conf == null ? null : new SerializableConfiguration(conf);
  }

  /** A new model initialised from {@code seed}, zero moments. */
  public static ShardStart fresh(MambaConfig config, long seed) {
    return new ShardStart(config, seed, null, null, null, null);
  }

  /**
   * The checkpoint directory {@code dir} (any Hadoop file system): its weights at {@code weights}
   * (in parameters() order), and its moments at {@code moments} ([0] first, [1] second), or zero
   * moments when null.
   */
  public static ShardStart read(
      MambaConfig config,
      String dir,
      List<TensorLocation> weights,
      TensorLocation[][] moments,
      Configuration conf) {
    return new ShardStart(config, 0, dir, weights.toArray(new TensorLocation[0]), moments, conf);
  }

  public MambaConfig config() {
    return config;
  }

  /** Slice s's weights, and its moments when the start has them (else null: zeros). */
  OptimizerShard make(ParameterSlices sl, int s) {
    float[] w = new float[sl.length(s)];
    if (weights == null) {
      Initialization.Ranges r = new Initialization.Ranges(config, seed);
      sl.forEachSegment(s, (t, to, so, n) -> r.fill(t, to, w, so, n));
      return new OptimizerShard(s, w, null, null);
    }
    Map<String, FSDataInputStream> open = new HashMap<>();
    try {
      read(weights, sl, s, w, open);
      float[] m = null, v = null;
      if (moments != null) {
        m = new float[w.length];
        v = new float[w.length];
        read(moments[0], sl, s, m, open);
        read(moments[1], sl, s, v, open);
      }
      return new OptimizerShard(s, w, m, v);
    } finally {
      for (FSDataInputStream in : open.values()) {
        try {
          in.close();
        } catch (IOException e) {
          // read already: nothing lost
        }
      }
    }
  }

  /** The slice's elements of the tensors at {@code at}, read range by range into dst. */
  private void read(
      TensorLocation[] at,
      ParameterSlices sl,
      int s,
      float[] dst,
      Map<String, FSDataInputStream> open) {
    byte[] buf = new byte[CHUNK_BYTES];
    sl.forEachSegment(
        s,
        (t, to, so, n) -> {
          TensorLocation loc = at[t];
          int size = loc.elementBytes();
          try {
            FSDataInputStream in = open.get(loc.file());
            if (in == null) {
              Path p = new Path(dir, loc.file());
              FileSystem fs = p.getFileSystem(conf.value());
              in = fs.open(p);
              open.put(loc.file(), in);
            }
            int per = CHUNK_BYTES / size;
            for (int done = 0; done < n; done += per) {
              int count = Math.min(per, n - done);
              in.readFully(loc.offset() + (long) (to + done) * size, buf, 0, count * size);
              SafetensorsFile.decodeFloats(
                  loc.dtype(), ByteBuffer.wrap(buf, 0, count * size), dst, so + done, count);
            }
          } catch (IOException e) {
            throw new UncheckedIOException(
                "checkpoint " + dir + ": cannot read tensor '" + loc.name() + "' of " + loc.file(),
                e);
          }
        });
  }
}
