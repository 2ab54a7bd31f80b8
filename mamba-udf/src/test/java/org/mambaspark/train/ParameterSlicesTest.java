package org.mambaspark.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.NamedTensor;

/**
 * Slices of the flat parameter vector: they cover every element once, cut across tensors, and AdamW
 * applied slice by slice gives the same floats as AdamW on the whole model (decay rules followed
 * per tensor), for an untied head too.
 */
class ParameterSlicesTest {
  static MambaWeights model(boolean tied, long seed) {
    MambaConfig c =
        MambaConfig.builder()
            .vocabSize(50)
            .hiddenSize(12)
            .numLayers(2)
            .stateSize(5)
            .tieWordEmbeddings(tied)
            .build();
    return Initialization.initialize(c, seed);
  }

  @Test
  void slicesCoverEveryParameterOnceAcrossTensors() {
    MambaWeights w = model(true, 1);
    long n = TrainStep.parameterBytes(w) / 4;
    for (int S : new int[] {1, 2, 7, 64}) {
      ParameterSlices sl = ParameterSlices.of(w, S);
      float[][] src = ParameterSlices.arrays(w);
      float[][] dst = ParameterSlices.arrays(MambaWeights.zerosLike(w));
      long total = 0;
      int crossing = 0;
      for (int s = 0; s < S; s++) {
        total += sl.length(s);
        int[] segments = {0};
        sl.forEachSegment(s, (t, to, so, len) -> segments[0]++);
        crossing += segments[0] > 1 ? 1 : 0;
        sl.copyIn(sl.copyOut(src, s), s, dst);
      }
      assertEquals(n, total);
      for (int i = 0; i < src.length; i++) {
        assertArrayEquals(src[i], dst[i], "tensor " + i + " with " + S + " slices");
      }
      System.out.printf(
          "%d slices of %d parameters: %d span two tensors or more%n", S, n, crossing);
    }
  }

  @Test
  void adamWSliceBySliceIsAdamWOnTheModel() {
    for (boolean tied : new boolean[] {true, false}) {
      MambaWeights whole = model(tied, 2), sliced = model(tied, 2);
      MambaWeights g = model(tied, 3); // any values serve as a gradient
      AdamW a = new AdamW(whole, 0.9f, 0.999f, 1e-8f, 0.1f);
      ParameterSlices sl = ParameterSlices.of(sliced, 5);
      AdamW.Settings h = a.settings();
      float[][] p = ParameterSlices.arrays(sliced), gt = ParameterSlices.arrays(g);
      float[][] m = new float[sl.count()][], v = new float[sl.count()][];
      for (int s = 0; s < sl.count(); s++) {
        m[s] = new float[sl.length(s)];
        v[s] = new float[sl.length(s)];
      }
      SplittableRandom r = new SplittableRandom(4);
      for (int t = 1; t <= 3; t++) {
        float lr = (float) (1e-2 * (1 + r.nextDouble()));
        a.update(whole, g, lr);
        for (int s = 0; s < sl.count(); s++) {
          float[] ps = sl.copyOut(p, s);
          // the gradient read where it lies, in the tensors it was computed in
          sl.adamw(s, h, t, lr, ps, m[s], v[s], sl.pieces(gt, s), 1f, ps, m[s], v[s]);
          sl.copyIn(ps, s, p);
        }
      }
      List<NamedTensor> x = whole.parameters(), y = sliced.parameters();
      for (int i = 0; i < x.size(); i++) {
        assertArrayEquals(x.get(i).data, y.get(i).data, x.get(i).name + " tied=" + tied);
      }
      System.out.printf(
          "tied=%b: AdamW in %d slices equals AdamW on the model, bit for bit, after 3 steps%n",
          tied, sl.count());
    }
  }

  /**
   * The sharded update reads the cached state and gradient and writes fresh arrays, the clipping
   * scale applied as the gradient is read: the same floats as the update in place on a scaled copy,
   * and the inputs unchanged.
   */
  @Test
  void adamWIntoOtherArraysWithAScaledGradientEqualsTheUpdateInPlace() {
    MambaWeights w = model(false, 2), g = model(false, 3);
    ParameterSlices sl = ParameterSlices.of(w, 3);
    AdamW.Settings h = new AdamW(w, 0.9f, 0.999f, 1e-8f, 0.1f).settings();
    float[][] p = ParameterSlices.arrays(w), gt = ParameterSlices.arrays(g);
    SplittableRandom r = new SplittableRandom(6);
    for (int s = 0; s < sl.count(); s++) {
      int n = sl.length(s);
      float[] p0 = sl.copyOut(p, s), g0 = sl.copyOut(gt, s);
      float[] m0 = new float[n], v0 = new float[n];
      for (int j = 0; j < n; j++) {
        m0[j] = (float) (0.01 * r.nextGaussian());
        v0[j] = (float) (1e-4 * r.nextDouble());
      }
      float scale = 0.37f;
      float[] pIn = p0.clone(), mIn = m0.clone(), vIn = v0.clone(), gIn = g0.clone();
      float[] pOut = new float[n], mOut = new float[n], vOut = new float[n];
      sl.adamw(s, h, 4, 3e-3f, pIn, mIn, vIn, Gradients.Pieces.of(gIn), scale, pOut, mOut, vOut);
      float[] pT = new float[n], mT = new float[n], vT = new float[n];
      sl.adamw(s, h, 4, 3e-3f, pIn, mIn, vIn, sl.pieces(gt, s), scale, pT, mT, vT);
      float[] gScaled = g0.clone();
      for (int j = 0; j < n; j++) {
        gScaled[j] *= scale;
      }
      sl.adamw(s, h, 4, 3e-3f, p0, m0, v0, Gradients.Pieces.of(gScaled), 1f, p0, m0, v0);
      assertArrayEquals(p0, pOut, "weights, slice " + s);
      assertArrayEquals(pOut, pT, "weights, slice " + s + ", the gradient read from its tensors");
      assertArrayEquals(mOut, mT, "m, slice " + s + ", the gradient read from its tensors");
      assertArrayEquals(vOut, vT, "v, slice " + s + ", the gradient read from its tensors");
      assertArrayEquals(m0, mOut, "m, slice " + s);
      assertArrayEquals(v0, vOut, "v, slice " + s);
      assertArrayEquals(g0, gIn, "the gradient is read, not scaled in place");
      assertArrayEquals(sl.copyOut(p, s), pIn, "the old weights stay");
    }
    System.out.println(
        "AdamW into other arrays with a scaled gradient equals AdamW in place, bit for bit");
  }

  /** Default slices: at most 256 MB each, as many as a multiple of the owners, one at the least. */
  @Test
  void theDefaultCountIsAMultipleOfTheOwnersWithSlicesOfAtMost256Mb() {
    long max = ParameterSlices.DEFAULT_SLICE_FLOATS;
    long[] sizes = {1, 7, max, max + 1, 3 * max - 1, 20 * max + 5};
    for (long n : sizes) {
      for (int owners : new int[] {1, 2, 3, 8}) {
        int s = ParameterSlices.defaultCount(n, owners);
        String what = n + " parameters, " + owners + " owners: " + s + " slices";
        assertTrue(s >= 1 && s <= n, what);
        assertTrue((n + s - 1) / s <= max, "slices of at most 256 MB: " + what);
        if (n >= owners) {
          assertEquals(0, s % owners, what);
          // the fewest such slices: one share fewer would make a slice longer than the bound
          assertTrue(s == owners || (n + s - owners - 1) / (s - owners) > max, what);
        }
      }
    }
    long small = numel(MambaConfig.preset("mamba-130m")),
        big = numel(MambaConfig.preset("mamba-1.4b"));
    int s130 = ParameterSlices.defaultCount(small, 1), s14 = ParameterSlices.defaultCount(big, 1);
    System.out.printf(
        "default slices, one executor: mamba-130m %d parameters in %d, mamba-1.4b %d in %d%n",
        small, s130, big, s14);
    assertEquals(2, s130);
    assertEquals(3, ParameterSlices.defaultCount(small, 3));
  }

  private static long numel(MambaConfig c) {
    long n = 0;
    for (NamedTensor t : MambaWeights.shapes(c)) {
      n += t.numel();
    }
    return n;
  }
}
