package org.mambaspark.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

/** {@link VectorMath} against double-precision Math, in ulps of the float result. */
class VectorMathTest {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

  /** f applied to a copy of x. */
  private static float[] apply(Kernel f, float[] x) {
    float[] y = x.clone();
    f.apply(y, 0, y.length);
    return y;
  }

  interface Kernel {
    void apply(float[] a, int off, int n);
  }

  /** |got - want| in units of the float ulp at want (at least the smallest subnormal). */
  private static double ulps(float got, double want) {
    return Math.abs(got - want) / Math.ulp((float) want);
  }

  private static float[] sweep(float lo, float hi, int n) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = lo + (hi - lo) * i / (n - 1);
    }
    return x;
  }

  @Test
  void expIsWithinTwoUlpsOverTheWholeRange() {
    float[] x = sweep(-103.9f, 88.72f, 400_003);
    float[] y = apply(VectorMath::exp, x);
    double worst = 0;
    for (int i = 0; i < x.length; i++) {
      double want = Math.exp(x[i]);
      // below the normal range the result carries fewer bits: compare absolutely there
      double err =
          want < Float.MIN_NORMAL ? Math.abs(y[i] - want) / Float.MIN_VALUE : ulps(y[i], want);
      worst = Math.max(worst, err);
    }
    System.out.printf("VectorMath.exp: largest error %.3f ulp%n", worst);
    assertTrue(worst <= 2, "exp error " + worst + " ulp");
  }

  @Test
  void expEdgesFollowIeee() {
    float[] x = {
      Float.NaN,
      Float.POSITIVE_INFINITY,
      Float.NEGATIVE_INFINITY,
      89f,
      88.73f,
      -110f,
      0f,
      -0f,
      88.72f
    };
    float[] y = apply(VectorMath::exp, x);
    assertTrue(Float.isNaN(y[0]));
    assertEquals(Float.POSITIVE_INFINITY, y[1]);
    assertEquals(0f, y[2]);
    assertEquals(Float.POSITIVE_INFINITY, y[3]);
    assertEquals(Float.POSITIVE_INFINITY, y[4]);
    assertEquals(0f, y[5]);
    assertEquals(1f, y[6]);
    assertEquals(1f, y[7]);
    assertTrue(Float.isFinite(y[8]) && y[8] > 3e38f, "e^88.72 = " + y[8]);
  }

  @Test
  void log1pIsWithinThreeUlpsOnTheUnitInterval() {
    float[] u = sweep(0f, 1f, 200_001);
    float[] tiny = new float[2000];
    for (int i = 0; i < tiny.length; i++) {
      tiny[i] = (float) Math.pow(2, -149 + 0.07 * i); // subnormals up to 1e-1
    }
    double worst = 0;
    for (float[] xs : new float[][] {u, tiny}) {
      float[] y = apply(VectorMath::log1pUnit, xs);
      for (int i = 0; i < xs.length; i++) {
        worst = Math.max(worst, ulps(y[i], Math.log1p(xs[i])));
      }
    }
    System.out.printf("VectorMath.log1pUnit: largest error %.3f ulp%n", worst);
    assertTrue(worst <= 3, "log1p error " + worst + " ulp");
  }

  private static float[] softplus(float[] x) {
    return apply(ActivationsSimd::softplus, x);
  }

  /** The scan's gate kernel, one block of VL channels a step. */
  private static float[] sigmoid(float[] x) {
    int VL = S.length(), steps = (x.length + VL - 1) / VL;
    float[] padded = java.util.Arrays.copyOf(x, steps * VL), out = new float[steps * VL];
    VectorMath.sigmoids(out, 0, padded, 0, VL, steps, VL);
    return java.util.Arrays.copyOf(out, x.length);
  }

  @Test
  void softplusAndSigmoidMatchTheScalarReference() {
    SplittableRandom r = new SplittableRandom(11);
    float[] x = new float[100_000];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) (r.nextGaussian() * (i % 3 == 0 ? 30 : 4));
    }
    float[] sp = softplus(x), sg = sigmoid(x);
    double worstSp = 0, worstSg = 0;
    for (int i = 0; i < x.length; i++) {
      double wantSp = x[i] > Activations.SOFTPLUS_THRESHOLD ? x[i] : Math.log1p(Math.exp(x[i]));
      worstSp = Math.max(worstSp, ulps(sp[i], wantSp));
      if (x[i] > -80) { // below, e^-x overflows and σ is 0 here as in the scalar path
        worstSg = Math.max(worstSg, ulps(sg[i], 1 / (1 + Math.exp(-x[i]))));
      }
    }
    System.out.printf(
        "VectorMath.softplus: largest error %.3f ulp; sigmoid %.3f ulp%n", worstSp, worstSg);
    assertTrue(worstSp <= 3, "softplus error " + worstSp + " ulp");
    assertTrue(worstSg <= 3, "sigmoid error " + worstSg + " ulp");
    float[] odd =
        apply(ActivationsSimd::softplus, new float[] {Float.NaN, Float.NEGATIVE_INFINITY, 1e30f});
    assertTrue(Float.isNaN(odd[0]));
    assertEquals(0f, odd[1]);
    assertEquals(1e30f, odd[2]);
    float[] sat = sigmoid(new float[] {-1000f, 1000f, Float.NaN});
    assertEquals(0f, sat[0]);
    assertEquals(1f, sat[1]);
    assertTrue(Float.isNaN(sat[2]));
  }

  /**
   * The reason the class exists: the first, interpreted calls and the C2-compiled ones after many
   * iterations give the same bits.
   */
  @Test
  void compiledAndInterpretedResultsAreTheSameBits() {
    float[] x = sweep(-30f, 30f, 4 * S.length());
    float[] cold = softplus(apply(VectorMath::exp, x));
    float[] warm = cold;
    for (int i = 0; i < 30_000; i++) {
      warm = softplus(apply(VectorMath::exp, x));
    }
    assertArrayEquals(cold, warm, 0f);
  }
}
