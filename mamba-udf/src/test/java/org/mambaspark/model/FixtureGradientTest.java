package org.mambaspark.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambaspark.Fixtures;

/**
 * Every parameter gradient of the mean loss against PyTorch's (float64), relative error under 1e-4
 * each.
 */
class FixtureGradientTest {
  static final double TOL = 1e-4;

  @ParameterizedTest
  @ValueSource(strings = {"tiny", "small", "falcon_tiny", "mamba2_tiny", "mamba2_small"})
  void everyGradientMatchesPyTorch(String name) {
    FixtureForwardTest.Case c = new FixtureForwardTest.Case(name);
    MambaWeights grads = MambaWeights.zerosLike(c.model.weights);
    // a chunk that does not divide L, so the chunked recomputation crosses boundaries
    Backprop bp = new Backprop(c.model, c.B, c.L, 7);
    double lossSum = bp.forwardBackward(c.ids, grads, 1.0 / (c.B * (c.L - 1)));
    double loss = lossSum / (c.B * (c.L - 1));
    double ref = c.expected.readFloats("loss")[0];
    System.out.printf("[%s] loss %.7f vs %.7f%n", name, loss, ref);
    assertTrue(Math.abs(loss - ref) / ref < 1e-5);
    double worst = 0;
    int checked = 0;
    for (NamedTensor t : grads.parameters()) {
      float[] want = c.expected.readFloats("grad." + t.name);
      double err = Fixtures.relErr(t.data, want);
      System.out.printf("[%s] grad.%s rel err %.3e%n", name, t.name, err);
      worst = Math.max(worst, err);
      checked++;
      assertTrue(err < TOL, "grad." + t.name + " rel err " + err);
    }
    long expectedGrads = c.expected.names().stream().filter(n -> n.startsWith("grad.")).count();
    assertEquals(expectedGrads, checked, "every grad.* tensor of the fixture is checked");
    System.out.printf("[%s] %d gradients, largest rel err %.3e%n", name, checked, worst);
  }
}
