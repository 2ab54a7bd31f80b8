package org.mambaspark.spark;

import com.esotericsoftware.kryo.Kryo;
import com.esotericsoftware.kryo.KryoSerializable;
import com.esotericsoftware.kryo.io.Input;
import com.esotericsoftware.kryo.io.Output;
import java.io.DataInput;
import java.io.DataInputStream;
import java.io.DataOutput;
import java.io.DataOutputStream;
import java.io.Externalizable;
import java.io.IOException;
import java.io.ObjectInput;
import java.io.ObjectOutput;
import java.io.UncheckedIOException;
import org.apache.spark.util.KnownSizeEstimation;
import org.mambaspark.train.GradientSum;
import org.mambaspark.train.Gradients;
import org.mambaspark.train.ParameterSlices;

/**
 * One slice of the flat parameter vector as a training step moves it between executors: a
 * partition's gradient sum of the slice with its loss and token counts, a reducer's sum with its
 * squared norm, or the slice's updated weights (all-gather). Cached by Spark where it is made and
 * fetched by the block manager where another executor needs it, written then as raw little-endian
 * floats ({@link WireFloats}); a gradient may go as bfloat16. A gradient record holds the
 * partition's tensors, not a copy: the slice is cut out as it is written or read ({@link #pieces}).
 *
 * <p>A view ({@link #view}, {@link #sharing}) tells Spark's storage accounting that it holds next
 * to nothing ({@link KnownSizeEstimation}, how Spark sizes values that share memory): its memory is
 * another cached value's, already counted there, and counting it twice leaves the cache short of
 * memory for values that fit.
 */
public final class SliceRecord implements Externalizable, KryoSerializable, KnownSizeEstimation {
  private static final long serialVersionUID = 1L;

  int slice;
  int partition = -1; // the data partition a gradient comes from
  String executors = ""; // the Spark executor ids that computed a gradient, comma-separated
  double lossSum;
  long tokens;
  long sequences;
  long computeNanos;
  double sumSquares; // Σ g² of a reduced slice, in double
  boolean bf16;
  float[] data; // the values (after reading, or as built)
  private transient float[][] tensors; // else: cut from these on writing
  private transient ParameterSlices slices;
  private transient boolean shared; // data is another cached value's array

  public SliceRecord() {} // Externalizable

  /** A partition's gradient sum of one slice, cut from the sum's tensors when written. */
  static SliceRecord gradient(
      GradientSum g,
      ParameterSlices slices,
      int slice,
      int partition,
      String executor,
      boolean bf16) {
    SliceRecord r = new SliceRecord();
    r.slice = slice;
    r.partition = partition;
    r.executors = executor;
    r.lossSum = g.lossSum;
    r.tokens = g.tokens;
    r.sequences = g.sequences;
    r.computeNanos = g.computeNanos;
    r.bf16 = bf16;
    r.tensors = g.grads;
    r.slices = slices;
    return r;
  }

  /** A slice's values as they are. */
  static SliceRecord of(int slice, float[] data) {
    SliceRecord r = new SliceRecord();
    r.slice = slice;
    r.data = data;
    return r;
  }

  /** A slice's values that belong to another cached value (an optimizer shard's weights). */
  static SliceRecord view(int slice, float[] data) {
    SliceRecord r = of(slice, data);
    r.shared = true;
    return r;
  }

  /** This record's slice and counts, its values this record's memory (a view). */
  SliceRecord sharing() {
    SliceRecord r = new SliceRecord();
    r.slice = slice;
    r.partition = partition;
    r.executors = executors;
    r.lossSum = lossSum;
    r.tokens = tokens;
    r.sequences = sequences;
    r.computeNanos = computeNanos;
    r.sumSquares = sumSquares;
    r.bf16 = bf16;
    r.data = data;
    r.tensors = tensors;
    r.slices = slices;
    r.shared = true;
    return r;
  }

  /** The values wherever they are: the record's array, or the tensors it is cut from. */
  Gradients.Pieces pieces() {
    return data != null ? Gradients.Pieces.of(data) : slices.pieces(tensors, slice);
  }

  /** What Spark's cache counts for this record: its floats, or a header for a view. */
  @Override
  public long estimatedSize() {
    return 64 + (shared ? 0 : 4L * length());
  }

  int length() {
    return data != null ? data.length : slices.length(slice);
  }

  @Override
  public void writeExternal(ObjectOutput out) throws IOException {
    writeTo(out);
  }

  @Override
  public void readExternal(ObjectInput in) throws IOException {
    readFrom(in);
  }

  /**
   * The same bytes under Spark's Kryo serializer (a common cluster setting): Kryo's field-by-field
   * default would skip a gradient record's values, which are cut from the tensors only as written.
   */
  @Override
  public void write(Kryo kryo, Output output) {
    try {
      writeTo(new DataOutputStream(output));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @Override
  public void read(Kryo kryo, Input input) {
    try {
      readFrom(new DataInputStream(input));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private void writeTo(DataOutput out) throws IOException {
    out.writeInt(slice);
    out.writeInt(partition);
    out.writeUTF(executors);
    out.writeDouble(lossSum);
    out.writeLong(tokens);
    out.writeLong(sequences);
    out.writeLong(computeNanos);
    out.writeDouble(sumSquares);
    out.writeBoolean(bf16);
    out.writeInt(length());
    if (data != null) {
      WireFloats.write(out, data, 0, data.length, bf16);
      return;
    }
    IOException[] failed = {null};
    slices.forEachSegment(
        slice,
        (t, tensorOffset, sliceOffset, n) -> {
          if (failed[0] == null) {
            try {
              WireFloats.write(out, tensors[t], tensorOffset, n, bf16);
            } catch (IOException e) {
              failed[0] = e;
            }
          }
        });
    if (failed[0] != null) {
      throw failed[0];
    }
  }

  private void readFrom(DataInput in) throws IOException {
    slice = in.readInt();
    partition = in.readInt();
    executors = in.readUTF();
    lossSum = in.readDouble();
    tokens = in.readLong();
    sequences = in.readLong();
    computeNanos = in.readLong();
    sumSquares = in.readDouble();
    bf16 = in.readBoolean();
    data = new float[in.readInt()];
    WireFloats.read(in, data, 0, data.length, bf16);
  }
}
