package org.mambaspark.ops;

import java.util.Locale;
import java.util.SplittableRandom;

/**
 * One thread's matrix-vector product speed per weight format, as a decode step meets it: {@code
 * count} distinct matrices of one shape taken in turn (24 in_proj's stream from memory; 1 stays hot
 * in cache). A plain main, not a test.
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -cp mamba-udf/target/classes:mamba-udf/target/test-classes \
 *   org.mambaspark.ops.GemvProbe [OC=3072] [C=768] [count=24] [seconds=2]
 * </pre>
 */
public final class GemvProbe {
  private GemvProbe() {}

  public static void main(String[] args) {
    if (args.length > 0 && args[0].equals("short")) {
      shortRows(Integer.parseInt(args[1]), Integer.parseInt(args[2]));
      return;
    }
    int OC = args.length > 0 ? Integer.parseInt(args[0]) : 3072;
    int C = args.length > 1 ? Integer.parseInt(args[1]) : 768;
    int count = args.length > 2 ? Integer.parseInt(args[2]) : 24;
    double seconds = args.length > 3 ? Double.parseDouble(args[3]) : 2;
    SplittableRandom r = new SplittableRandom(3);
    float[] x = new float[C];
    for (int i = 0; i < C; i++) {
      x[i] = (float) r.nextGaussian();
    }
    float[] out = new float[OC];
    int variant = args.length > 4 ? Integer.parseInt(args[4]) : 0;
    for (WeightMatrix.Dtype d : WeightMatrix.Dtype.values()) {
      WeightMatrix[] ws = new WeightMatrix[count];
      for (int k = 0; k < count; k++) {
        float[] w = new float[OC * C];
        for (int i = 0; i < w.length; i++) {
          w[i] = (float) r.nextGaussian();
        }
        ws[k] = WeightMatrix.of(w, OC, C, d);
      }
      for (int pass = 0; pass < 2; pass++) {
        java.lang.management.ThreadMXBean tm =
            java.lang.management.ManagementFactory.getThreadMXBean();
        long t0 = tm.getCurrentThreadCpuTime();
        long n = 0;
        while (tm.getCurrentThreadCpuTime() - t0 < seconds * 1e9) {
          for (WeightMatrix w : ws) {
            if (variant != 0 && d == WeightMatrix.Dtype.INT8) {
              break;
            }
            if (d == WeightMatrix.Dtype.FP32) {
              MatmulSimd.dotRows(out, 0, OC, x, 0, C, w.f32, null, 1, C, 0, OC);
            } else {
              WeightMatrixSimd.dotRows(out, 0, OC, x, 0, C, w, null, 1, 0, OC);
            }
            n++;
          }
          if (variant != 0 && d == WeightMatrix.Dtype.INT8) {
            for (WeightMatrix w : ws) {
              variant(variant, out, x, w);
              n++;
            }
          }
        }
        double s = (tm.getCurrentThreadCpuTime() - t0) / 1e9; // CPU time: robust to load
        if (pass == 1) {
          double gw = (double) n * OC * C / s / 1e9;
          System.out.printf(
              Locale.ROOT,
              "v" + variant + " %s (%d, %d) x%d: %.3f ms each, %.2f Gweights/s, %.1f GB/s%n",
              d.label(),
              OC,
              C,
              count,
              s * 1e3 / n,
              gw,
              gw * d.bytesPerWeight);
        }
      }
    }
  }

  private static final jdk.incubator.vector.VectorSpecies<Float> S =
      jdk.incubator.vector.FloatVector.SPECIES_512;
  private static final jdk.incubator.vector.VectorSpecies<Byte> BS =
      jdk.incubator.vector.ByteVector.SPECIES_128;

  private static jdk.incubator.vector.FloatVector bytes(byte[] q, int i) {
    return (jdk.incubator.vector.FloatVector)
        jdk.incubator.vector.ByteVector.fromArray(BS, q, i)
            .convertShape(jdk.incubator.vector.VectorOperators.B2F, S, 0);
  }

  /** The Vector API dot products against the scalar ones on short rows (dt_proj: C = 48). */
  static void shortRows(int OC, int C) {
    SplittableRandom r = new SplittableRandom(5);
    float[] w = new float[OC * C], x = new float[C], out = new float[OC];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) r.nextGaussian();
    }
    java.lang.management.ThreadMXBean tm = java.lang.management.ManagementFactory.getThreadMXBean();
    for (int pass = 0; pass < 4; pass++) {
      boolean simd = pass % 2 == 0;
      long t0 = tm.getCurrentThreadCpuTime();
      int n = 0;
      for (; n < 20000; n++) {
        if (simd) {
          MatmulSimd.dotRows(out, 0, OC, x, 0, C, w, null, 1, C, 0, OC);
        } else {
          MatmulGemm.dotRowsScalar(out, 0, OC, x, 0, C, w, null, 1, C, 0, OC);
        }
      }
      System.out.printf(
          Locale.ROOT,
          "(%d, %d) %s: %.2f us each%n",
          OC,
          C,
          simd ? "vector" : "scalar",
          (tm.getCurrentThreadCpuTime() - t0) / 1e3 / n);
    }
  }

  private static final java.util.Map<WeightMatrix, byte[]> PANELS = new java.util.HashMap<>();

  /** Rows in groups of 4, each group's rows interleaved by 16 columns: one sequential stream. */
  static byte[] panels(WeightMatrix w) {
    return PANELS.computeIfAbsent(
        w,
        k -> {
          int C = w.cols;
          byte[] p = new byte[w.q.length];
          for (int g = 0; g < w.rows / 4; g++) {
            for (int c = 0; c < C; c += 16) {
              for (int r = 0; r < 4; r++) {
                System.arraycopy(w.q, (4 * g + r) * C + c, p, 4 * g * C + 4 * c + 16 * r, 16);
              }
            }
          }
          return p;
        });
  }

  /** 1: one row at a time, two blocks (64 bytes) per iteration. */
  static void variant(int v, float[] out, float[] x, WeightMatrix w) {
    if (v == 1) {
      v1(out, x, w);
    } else if (v == 2) {
      v2(out, x, w);
    } else {
      v3(out, x, w);
    }
  }

  static void v3(float[] out, float[] x, WeightMatrix w) {
    int C = w.cols, nb = w.blocksPerRow;
    float[] sc = w.scale;

    byte[] p = panels(w);
    for (int o = 0; o < w.rows; o += 4) {
      int base = o * C;
      int g0 = o * nb, g1 = g0 + nb, g2 = g1 + nb, g3 = g2 + nb;
      var s0 = jdk.incubator.vector.FloatVector.zero(S);
      var s1 = s0;
      var s2 = s0;
      var s3 = s0;
      for (int b = 0; b < nb; b++) {
        int c = b * 32;
        var x0 = jdk.incubator.vector.FloatVector.fromArray(S, x, c);
        var x1 = jdk.incubator.vector.FloatVector.fromArray(S, x, c + 16);
        int i = base + 4 * c;
        var a0 = bytes(p, i).mul(x0);
        var a1 = bytes(p, i + 16).mul(x0);
        var a2 = bytes(p, i + 32).mul(x0);
        var a3 = bytes(p, i + 48).mul(x0);
        a0 = bytes(p, i + 64).fma(x1, a0);
        a1 = bytes(p, i + 80).fma(x1, a1);
        a2 = bytes(p, i + 96).fma(x1, a2);
        a3 = bytes(p, i + 112).fma(x1, a3);
        s0 = a0.fma(jdk.incubator.vector.FloatVector.broadcast(S, sc[g0 + b]), s0);
        s1 = a1.fma(jdk.incubator.vector.FloatVector.broadcast(S, sc[g1 + b]), s1);
        s2 = a2.fma(jdk.incubator.vector.FloatVector.broadcast(S, sc[g2 + b]), s2);
        s3 = a3.fma(jdk.incubator.vector.FloatVector.broadcast(S, sc[g3 + b]), s3);
      }
      out[o] = s0.reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
      out[o + 1] = s1.reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
      out[o + 2] = s2.reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
      out[o + 3] = s3.reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
    }
  }

  static void v1(float[] out, float[] x, WeightMatrix w) {
    int C = w.cols, nb = w.blocksPerRow;
    byte[] q = w.q;
    float[] sc = w.scale;

    for (int o = 0; o < w.rows; o++) {
      int wo = o * C, g = o * nb;
      jdk.incubator.vector.FloatVector s0 = jdk.incubator.vector.FloatVector.zero(S), s1 = s0;
      for (int b = 0; b < nb; b += 2) {
        int c = b * 32;
        var a0 = bytes(q, wo + c).mul(jdk.incubator.vector.FloatVector.fromArray(S, x, c));
        a0 =
            bytes(q, wo + c + 16).fma(jdk.incubator.vector.FloatVector.fromArray(S, x, c + 16), a0);
        var a1 =
            bytes(q, wo + c + 32).mul(jdk.incubator.vector.FloatVector.fromArray(S, x, c + 32));
        a1 =
            bytes(q, wo + c + 48).fma(jdk.incubator.vector.FloatVector.fromArray(S, x, c + 48), a1);
        s0 = a0.fma(jdk.incubator.vector.FloatVector.broadcast(S, sc[g + b]), s0);
        s1 = a1.fma(jdk.incubator.vector.FloatVector.broadcast(S, sc[g + b + 1]), s1);
      }
      out[o] = s0.add(s1).reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
    }
  }

  static void v2(float[] out, float[] x, WeightMatrix w) {
    int C = w.cols, nb = w.blocksPerRow;
    byte[] q = w.q;
    float[] sc = w.scale;
    // 2 rows, 2 blocks each
    for (int o = 0; o < w.rows; o += 2) {
      int wo = o * C, g = o * nb, wp = wo + C, gp = g + nb;
      var s0 = jdk.incubator.vector.FloatVector.zero(S);
      var s1 = s0;
      var t0 = s0;
      var t1 = s0;
      for (int b = 0; b < nb; b += 2) {
        int c = b * 32;
        var x0 = jdk.incubator.vector.FloatVector.fromArray(S, x, c);
        var x1 = jdk.incubator.vector.FloatVector.fromArray(S, x, c + 16);
        var x2 = jdk.incubator.vector.FloatVector.fromArray(S, x, c + 32);
        var x3 = jdk.incubator.vector.FloatVector.fromArray(S, x, c + 48);
        var a0 = bytes(q, wo + c).mul(x0);
        a0 = bytes(q, wo + c + 16).fma(x1, a0);
        var a1 = bytes(q, wo + c + 32).mul(x2);
        a1 = bytes(q, wo + c + 48).fma(x3, a1);
        var b0 = bytes(q, wp + c).mul(x0);
        b0 = bytes(q, wp + c + 16).fma(x1, b0);
        var b1 = bytes(q, wp + c + 32).mul(x2);
        b1 = bytes(q, wp + c + 48).fma(x3, b1);
        s0 = a0.fma(jdk.incubator.vector.FloatVector.broadcast(S, sc[g + b]), s0);
        s1 = a1.fma(jdk.incubator.vector.FloatVector.broadcast(S, sc[g + b + 1]), s1);
        t0 = b0.fma(jdk.incubator.vector.FloatVector.broadcast(S, sc[gp + b]), t0);
        t1 = b1.fma(jdk.incubator.vector.FloatVector.broadcast(S, sc[gp + b + 1]), t1);
      }
      out[o] = s0.add(s1).reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
      out[o + 1] = t0.add(t1).reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
    }
  }
}
