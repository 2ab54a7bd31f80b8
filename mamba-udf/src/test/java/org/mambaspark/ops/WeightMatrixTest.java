package org.mambaspark.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The 16- and 8-bit weight formats: encoding against its definition (bf16 round-to-nearest-even,
 * int8 within half a step of its block's scale), and the fast forward (Vector API dot products, the
 * scalar dot products, the GEMM decoding its panels) against the plain loop over decoded weights,
 * to ||fast − ref|| / ||ref|| < 1e-5 with the largest error printed.
 */
class WeightMatrixTest {
  /** {BT, C, OC, inOff, inPad, outOff, outPad}: tails of rows, of vectors and of int8 blocks. */
  static final int[][] SHAPES = {
    {1, 1, 1, 0, 0, 0, 0},
    {1, 7, 5, 1, 2, 3, 1},
    {2, 33, 13, 0, 0, 0, 0},
    {3, 64, 8, 0, 3, 2, 0},
    {1, 768, 300, 0, 0, 0, 0},
    {5, 1536, 80, 0, 0, 0, 4},
    {47, 300, 70, 3, 0, 0, 2},
    {66, 768, 131, 0, 0, 0, 0},
    {130, 97, 200, 1, 5, 0, 3},
  };

  @Test
  void forwardMatchesTheDecodedReferenceInEveryFormatAndPath() {
    SplittableRandom r = new SplittableRandom(18);
    double worst = 0;
    for (WeightMatrix.Dtype d : WeightMatrix.Dtype.values()) {
      for (int[] s : SHAPES) {
        int BT = s[0], C = s[1], OC = s[2], inOff = s[3], inStride = C + s[4];
        int outOff = s[5], outStride = OC + s[6];
        float[] w = MatmulTest.rand(r, OC * C);
        float[] bias = s[4] % 2 == 0 ? MatmulTest.rand(r, OC) : null;
        float[] inp = MatmulTest.rand(r, inOff + BT * inStride);
        WeightMatrix m = WeightMatrix.of(w, OC, C, d);
        float[] ref = new float[outOff + BT * outStride];
        Matmul.matmulForwardReference(ref, outOff, outStride, inp, inOff, inStride, m, bias, BT);
        for (boolean simd : Simd.ENABLED ? new boolean[] {true, false} : new boolean[] {false}) {
          float[] out = new float[ref.length];
          Matmul.forward(simd, out, outOff, outStride, inp, inOff, inStride, m, bias, BT);
          double err = relErr(out, ref);
          worst = Math.max(worst, err);
          assertTrue(
              err < 1e-5,
              d + " simd=" + simd + " shape " + java.util.Arrays.toString(s) + ": " + err);
        }
        // the direct GEMM (the path many rows take) on the same product
        float[] out = new float[ref.length];
        MatmulGemm.gemm(Simd.ENABLED, out, outOff, outStride, inp, inOff, inStride, m, bias, BT);
        worst = Math.max(worst, relErr(out, ref));
        assertTrue(relErr(out, ref) < 1e-5, d + " gemm " + java.util.Arrays.toString(s));
      }
    }
    System.out.printf("matmul in weight formats: largest relative error %.3g%n", worst);
  }

  @Test
  void encodingsAreTheirDefinitions() {
    SplittableRandom r = new SplittableRandom(7);
    int OC = 9, C = 70; // a partial last block
    float[] w = MatmulTest.rand(r, OC * C);
    w[5] = 0f;
    w[100] = 3e-3f;
    WeightMatrix f = WeightMatrix.of(w, OC, C, WeightMatrix.Dtype.FP32);
    WeightMatrix h = WeightMatrix.of(w, OC, C, WeightMatrix.Dtype.BF16);
    WeightMatrix q = WeightMatrix.of(w, OC, C, WeightMatrix.Dtype.INT8);
    assertTrue(f.fp32() == w, "fp32 wraps the array, never copies it");
    double worstQ = 0;
    for (int o = 0; o < OC; o++) {
      for (int b = 0; b * WeightMatrix.BLOCK < C; b++) {
        int c0 = b * WeightMatrix.BLOCK, c1 = Math.min(C, c0 + WeightMatrix.BLOCK);
        float max = 0f;
        for (int c = c0; c < c1; c++) {
          max = Math.max(max, Math.abs(w[o * C + c]));
        }
        float step = max / 127f;
        for (int c = c0; c < c1; c++) {
          float x = w[o * C + c];
          assertEquals(Bf16.widen(Bf16.round(x)), h.get(o, c), 0f);
          assertTrue(Math.abs(h.get(o, c) - x) <= Math.abs(x) * 0x1p-8f);
          double e = Math.abs(q.get(o, c) - x);
          worstQ = Math.max(worstQ, e / step);
          assertTrue(e <= 0.5 * step * (1 + 1e-5), "int8 [" + o + ", " + c + "]: " + e);
        }
      }
    }
    float[] row = new float[C];
    q.decode(3, 0, C, row, 0);
    for (int c = 0; c < C; c++) {
      assertEquals(q.get(3, c), row[c], 0f);
    }
    assertEquals(4L * OC * C, f.bytes());
    assertEquals(2L * OC * C, h.bytes());
    assertEquals((long) OC * C + 4L * OC * 3, q.bytes());
    System.out.printf("int8: largest error %.3f of a step (bound 0.5)%n", worstQ);
  }

  /**
   * The panel layout: get and decode agree with the fp32 weights they came from (within the
   * format's rounding), for rows and columns outside whole panels too, and the Vector API product
   * over a range of rows that starts and ends inside panels equals the reference on those rows.
   */
  @Test
  void panelLayoutDecodesEveryWeightAndAnyRowRange() {
    SplittableRandom r = new SplittableRandom(11);
    double worst = 0;
    for (int[] shape : new int[][] {{13, 40}, {8, 64}, {7, 15}, {17, 97}}) {
      int OC = shape[0], C = shape[1];
      float[] w = MatmulTest.rand(r, OC * C);
      float[] x = MatmulTest.rand(r, C);
      for (WeightMatrix.Dtype d :
          new WeightMatrix.Dtype[] {WeightMatrix.Dtype.BF16, WeightMatrix.Dtype.INT8}) {
        WeightMatrix m = WeightMatrix.of(w, OC, C, d);
        float[] row = new float[C + 3];
        for (int o = 0; o < OC; o++) {
          m.decode(o, 2, C - 3, row, 1);
          for (int c = 0; c < C; c++) {
            float tol = d == WeightMatrix.Dtype.BF16 ? Math.abs(w[o * C + c]) / 128 : 0.04f;
            assertEquals(w[o * C + c], m.get(o, c), tol, d + " W[" + o + ", " + c + "]");
            if (c >= 2 && c < C - 1) {
              assertEquals(m.get(o, c), row[1 + c - 2], 0f, d + " decode W[" + o + ", " + c + "]");
            }
          }
        }
        if (!Simd.ENABLED || !WeightMatrixSimd.usable()) {
          continue;
        }
        int o0 = 1, o1 = OC - 2;
        float[] ref = new float[OC], out = new float[OC];
        Matmul.matmulForwardReference(ref, 0, OC, x, 0, C, m, null, 1);
        WeightMatrixSimd.dotRows(out, 0, OC, x, 0, C, m, null, 1, o0, o1);
        for (int o = o0; o < o1; o++) {
          worst = Math.max(worst, Math.abs(out[o] - ref[o]) / (1e-6 + Math.abs(ref[o])));
          assertEquals(ref[o], out[o], 1e-4f * (1 + Math.abs(ref[o])), d + " row " + o);
        }
        assertEquals(0f, out[0], 0f, "rows outside [o0, o1) untouched");
        assertEquals(0f, out[OC - 1], 0f, "rows outside [o0, o1) untouched");
      }
    }
    System.out.printf("panel rows [o0, o1): largest relative difference %.3g%n", worst);
  }

  @Test
  void badInputIsRefusedWithOneLine() {
    float[] w = {1f, Float.NaN, 2f, 3f};
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> WeightMatrix.of(w, 2, 2, WeightMatrix.Dtype.INT8));
    assertTrue(e.getMessage().contains("row 0"), e.getMessage());
    assertThrows(
        IllegalArgumentException.class, () -> WeightMatrix.of(w, 3, 2, WeightMatrix.Dtype.BF16));
    e =
        assertThrows(
            IllegalArgumentException.class,
            () -> WeightMatrix.Dtype.parse("fp8", "--weights-dtype"));
    assertEquals("--weights-dtype must be fp32, bf16 or int8, got 'fp8'", e.getMessage());
    assertEquals(WeightMatrix.Dtype.BF16, WeightMatrix.Dtype.parse(" BF16", "x"));
  }

  static double relErr(float[] a, float[] b) {
    double num = 0, den = 0;
    for (int i = 0; i < a.length; i++) {
      num += (a[i] - b[i]) * (double) (a[i] - b[i]);
      den += b[i] * (double) b[i];
    }
    return den == 0 ? Math.sqrt(num) : Math.sqrt(num / den);
  }
}
