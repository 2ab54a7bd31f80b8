package org.mambaspark.spark;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambaspark.kernel.GpuBackend;
import org.mambaspark.kernel.OpenClTests;
import org.mambaspark.model.Backend;
import org.mambaspark.model.Backends;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.ModelRunner;
import org.mambaspark.train.AdamW;
import org.mambaspark.train.GradientSum;
import org.mambaspark.train.LrSchedule;
import org.mambaspark.train.TrainStep;

/**
 * The training gradient through the GPU backend's runner (on PoCL, OpenCL on the CPU, in CI) equals
 * the CPU's, also after an optimizer step changed the weights in place and {@code reloadWeights}
 * put them on the device again — the way the executors' cached runner is used step after step — and
 * so does the eval loss.
 */
class TrainingGpuTest {
  @TempDir static Path tmp;

  static double relErr(GradientSum a, GradientSum b) {
    double num = 0, den = 0;
    for (int i = 0; i < a.grads.length; i++) {
      for (int j = 0; j < a.grads[i].length; j++) {
        double d = (double) a.grads[i][j] - b.grads[i][j];
        num += d * d;
        den += (double) b.grads[i][j] * b.grads[i][j];
      }
    }
    return Math.sqrt(num / den);
  }

  @Test
  void gradientStepAfterStepEqualsTheCpu() throws Exception {
    OpenClTests.assumeOpenCl();
    MambaModel model = TestModels.load(TestModels.write(tmp, "m"));
    System.setProperty("mamba.opencl.cpu", "true");
    Backend b;
    try {
      b = GpuBackend.open(0);
    } finally {
      System.clearProperty("mamba.opencl.cpu");
    }
    int L = 20, V = model.config.vocabSize;
    SplittableRandom r = new SplittableRandom(3);
    List<int[]> seqs = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      seqs.add(r.ints(L, 0, V).toArray());
    }
    MambaWeights w = model.weights;
    AdamW opt = new AdamW(w, 0.9f, 0.999f, 1e-8f, 0.1f);
    MambaWeights scratch = MambaWeights.zerosLike(w);
    try (ModelRunner gpu = b.open(model);
        ModelRunner cpu = Backends.cpu().open(model)) {
      for (int step = 0; step < 3; step++) {
        GradientSum g = TrainStep.gradient(gpu, seqs, 2, L, 8);
        GradientSum c = TrainStep.gradient(cpu, seqs, 2, L, 8);
        double[] eg = TrainStep.lossSum(gpu, seqs, 2, L);
        double[] ec = TrainStep.lossSum(cpu, seqs, 2, L);
        double err = relErr(g, c);
        double lossErr = Math.abs(g.lossSum - c.lossSum) / c.lossSum;
        double evalErr = Math.abs(eg[0] - ec[0]) / ec[0];
        System.out.printf(
            "step %d on %s: gradient rel err %.2e, loss rel err %.2e, eval loss rel err %.2e%n",
            step, b.device(), err, lossErr, evalErr);
        assertTrue(err < 1e-4, "gradient rel err " + err);
        assertTrue(lossErr < 1e-5 && evalErr < 1e-5, lossErr + " " + evalErr);
        TrainStep.apply(w, opt, c, scratch, LrSchedule.constant(1e-2f), 1.0f);
        gpu.reloadWeights(); // the executors' runner after each broadcast
      }
    }
  }
}
