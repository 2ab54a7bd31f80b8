package org.mambaspark.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.SplittableRandom;
import org.apache.spark.SparkConf;
import org.apache.spark.serializer.JavaSerializer;
import org.apache.spark.serializer.KryoSerializer;
import org.apache.spark.serializer.Serializer;
import org.apache.spark.serializer.SerializerInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambaspark.io.SafetensorsFile;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.train.GradientSum;
import org.mambaspark.train.ParameterSlices;
import scala.reflect.ClassTag;
import scala.reflect.ClassTag$;

/**
 * The training shuffle's wire format: a gradient slice cut from a partition's sum arrives with the
 * slice's floats exactly (fp32, 4 bytes a value plus a small header and the stream's framing) or
 * within bfloat16's rounding (2 bytes a value); an optimizer shard round-trips exactly, a fresh one
 * without its zero moments. Under both of Spark's serializers (Java's, and Kryo, which clusters
 * often set).
 */
class SliceRecordTest {
  /** Spark's two serializers, as a job's spark.serializer picks them. */
  static final Serializer[] SERIALIZERS = {
    new JavaSerializer(new SparkConf()), new KryoSerializer(new SparkConf())
  };

  static <T> T roundTrip(T o, long[] bytes, Serializer serializer) {
    SerializerInstance si = serializer.newInstance();
    ClassTag<Object> any = ClassTag$.MODULE$.Any();
    ByteBuffer b = si.serialize(o, any);
    bytes[0] = b.remaining();
    @SuppressWarnings("unchecked")
    T back = (T) si.deserialize(b, any);
    return back;
  }

  @ParameterizedTest
  @ValueSource(ints = {0, 1})
  void gradientSlicesArriveAsWritten(int serializer) throws Exception {
    Serializer ser = SERIALIZERS[serializer];
    MambaConfig c =
        MambaConfig.builder().vocabSize(40).hiddenSize(8).numLayers(2).stateSize(4).build();
    MambaWeights shape = Initialization.initialize(c, 1);
    GradientSum g = new GradientSum(MambaWeights.zerosLike(shape));
    SplittableRandom r = new SplittableRandom(2);
    for (float[] a : g.grads) {
      for (int j = 0; j < a.length; j++) {
        a[j] = (float) r.nextGaussian() * (float) Math.pow(10, r.nextInt(-6, 3));
      }
    }
    g.lossSum = 12.5;
    g.tokens = 77;
    ParameterSlices sl = ParameterSlices.of(shape, 3);
    float[][] grads = g.grads;
    double worstBf16 = 0;
    for (int s = 0; s < sl.count(); s++) {
      float[] want = sl.copyOut(grads, s);
      long[] bytes = {0};
      SliceRecord fp32 = roundTrip(SliceRecord.gradient(g, sl, s, 4, "7", false), bytes, ser);
      assertArrayEquals(want, fp32.data);
      assertEquals(4, fp32.partition);
      assertEquals("7", fp32.executors);
      assertEquals(77, fp32.tokens);
      assertEquals(12.5, fp32.lossSum);
      assertTrue(bytes[0] < 4.04 * want.length + 200, bytes[0] + " bytes for " + want.length);
      SliceRecord half = roundTrip(SliceRecord.gradient(g, sl, s, 4, "7", true), bytes, ser);
      assertTrue(bytes[0] < 2.02 * want.length + 200, bytes[0] + " bytes for " + want.length);
      for (int j = 0; j < want.length; j++) {
        worstBf16 = Math.max(worstBf16, Math.abs(half.data[j] - want[j]) / Math.abs(want[j]));
      }
    }
    // 8 significant bits: round to nearest is within half a unit in the last place, 2^-8
    System.out.printf("bf16 on the wire: largest relative error %.2e (bound 2^-8)%n", worstBf16);
    assertTrue(worstBf16 <= 0x1p-8, "bf16 rel err " + worstBf16);
    assertTrue(Float.isNaN(SafetensorsFile.bf16ToFloat(SafetensorsFile.floatToBf16(Float.NaN))));
    assertEquals(
        Float.POSITIVE_INFINITY,
        SafetensorsFile.bf16ToFloat(SafetensorsFile.floatToBf16(Float.POSITIVE_INFINITY)));
  }

  @ParameterizedTest
  @ValueSource(ints = {0, 1})
  void optimizerShardsRoundTripExactly(int serializer) throws Exception {
    Serializer ser = SERIALIZERS[serializer];
    SplittableRandom r = new SplittableRandom(5);
    float[][] a = new float[3][70_001]; // more than one write buffer
    for (float[] x : a) {
      for (int j = 0; j < x.length; j++) {
        x[j] = (float) r.nextGaussian();
      }
    }
    long[] bytes = {0};
    OptimizerShard back = roundTrip(new OptimizerShard(9, a[0], a[1], a[2]), bytes, ser);
    assertEquals(9, back.slice);
    assertArrayEquals(a[0], back.w);
    assertArrayEquals(a[1], back.m);
    assertArrayEquals(a[2], back.v);
    System.out.printf("optimizer shard of 3 x 70001 floats: %d bytes on the wire%n", bytes[0]);
    // raw floats plus Java's block-data framing (5 bytes a 1 KB block)
    assertTrue(bytes[0] < 12 * 70_001 * 1.01 + 200, bytes[0] + " bytes");
    OptimizerShard fresh = roundTrip(new OptimizerShard(2, a[0], null, null), bytes, ser);
    assertArrayEquals(a[0], fresh.w);
    assertTrue(bytes[0] < 4 * 70_001 * 1.01 + 200, "no moments shipped: " + bytes[0] + " bytes");
    assertNull(fresh.m, "moments of a shard that never stepped");
    OptimizerShard next = fresh.successor();
    assertEquals(2, next.slice);
    assertArrayEquals(new float[70_001], next.m);
    assertArrayEquals(new float[70_001], next.v);
  }
}
