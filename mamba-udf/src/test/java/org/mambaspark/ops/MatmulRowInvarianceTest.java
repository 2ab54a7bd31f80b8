package org.mambaspark.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The blocked GEMM behind {@link Matmul#matmulForward}: a row's output is the same bits whether it
 * is computed alone or as any row of a larger call (different row counts, hence different edge
 * tiles, job splits and thread splits), on the Vector API and the scalar micro-kernels. So batched
 * forwards (48 positions or more) give a document the same numbers whatever its batch-mates; the
 * dot products matmulForward takes for a handful of rows round differently (counted and printed).
 */
class MatmulRowInvarianceTest {
  static float[] random(SplittableRandom r, int n) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) (r.nextDouble() * 2 - 1);
    }
    return a;
  }

  /** out (M, OC) = inp (M, C) @ wᵀ + bias through the GEMM. */
  static float[] gemm(boolean simd, float[] inp, float[] w, float[] bias, int M, int C, int OC) {
    float[] out = new float[M * OC];
    MatmulGemm.gemm(simd, out, 0, OC, inp, 0, C, 1, w, 0, 1, C, bias, false, M, C, OC);
    return out;
  }

  @Test
  void aRowIsTheSameAloneAndAmongOthers() {
    SplittableRandom r = new SplittableRandom(3);
    int[][] shapes = {{768, 1536}, {1536, 80}, {48, 1536}, {300, 257}, {256, 50}};
    boolean[] kernels = Simd.ENABLED ? new boolean[] {true, false} : new boolean[] {false};
    int rowsDiffering = 0;
    for (int[] sh : shapes) {
      int C = sh[0], OC = sh[1];
      float[] w = random(r, OC * C), bias = random(r, OC);
      float[] row = random(r, C);
      for (boolean simd : kernels) {
        float[] alone = gemm(simd, row, w, bias, 1, C, OC);
        for (int M : new int[] {2, 3, 5, 47, 48, 130, 600}) {
          for (int at : new int[] {0, M / 2, M - 1}) {
            float[] inp = random(r, M * C);
            System.arraycopy(row, 0, inp, at * C, C);
            float[] out = gemm(simd, inp, w, bias, M, C, OC);
            for (int o = 0; o < OC; o++) {
              assertEquals(
                  Float.floatToIntBits(alone[o]),
                  Float.floatToIntBits(out[at * OC + o]),
                  "C=" + C + " OC=" + OC + " simd=" + simd + " M=" + M + " row " + at + " o=" + o);
            }
          }
        }
        float[] dots = new float[OC];
        Matmul.forward(simd, dots, 0, OC, row, 0, C, w, bias, 1, C, OC);
        for (int o = 0; o < OC; o++) {
          rowsDiffering += dots[o] != alone[o] ? 1 : 0;
        }
      }
    }
    System.out.println(
        "GEMM: every row bit-identical alone and among 2..600 rows; the one-row dot products"
            + " differ from it in "
            + rowsDiffering
            + " outputs");
  }
}
