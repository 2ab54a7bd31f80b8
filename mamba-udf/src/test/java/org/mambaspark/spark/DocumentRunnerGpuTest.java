package org.mambaspark.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambaspark.batch.Doc;
import org.mambaspark.batch.DocumentRunner;
import org.mambaspark.kernel.GpuBackend;
import org.mambaspark.kernel.OpenClTests;
import org.mambaspark.model.Backend;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.ModelRunner;

/**
 * The partition work on the GPU backend (on PoCL, OpenCL on the CPU, where there is no GPU: what CI
 * has) equals the CPU engine's: batched and padded scores with their log-probabilities, streamed
 * pieces with the state on the device, pooled embeddings, greedy continuations.
 */
class DocumentRunnerGpuTest {
  @TempDir static Path tmp;
  static MambaModel model;
  static ModelRunner gpu;

  @BeforeAll
  static void open() throws Exception {
    if (!OpenClTests.available()) {
      return;
    }
    model = TestModels.load(TestModels.write(tmp, "m"));
    System.setProperty("mamba.opencl.cpu", "true");
    Backend b = GpuBackend.open(0);
    System.out.println("GPU backend: " + b.device());
    gpu = b.open(model);
  }

  @BeforeEach
  void needsOpenCl() {
    OpenClTests.assumeOpenCl();
  }

  @AfterAll
  static void close() {
    System.clearProperty("mamba.opencl.cpu");
    if (gpu != null) {
      gpu.close();
    }
  }

  static double relErr(double a, double b) {
    return Math.abs(a - b) / Math.max(1e-12, Math.abs(b));
  }

  @Test
  void scoresEmbeddingsAndContinuationsEqualTheCpu() {
    MambaSettings s =
        MambaSettings.of(
            "batchSize",
            "4",
            "pieceLength",
            "24",
            "logprobs",
            "true",
            "maxNewTokens",
            "6",
            "stopIds",
            "-1");
    // lengths: batched with padding (< 24) and streamed (> 24)
    List<Doc> onGpu = DocumentRunnerTest.docs(5, 17, 16, 9, 2, 60, 23);
    List<Doc> onCpu = DocumentRunnerTest.docs(5, 17, 16, 9, 2, 60, 23);
    new DocumentRunner(gpu, s.runnerOptions()).score(onGpu);
    new DocumentRunner(model, s.runnerOptions()).score(onCpu);
    double worst = 0, worstLp = 0;
    for (int i = 0; i < onGpu.size(); i++) {
      assertNull(onGpu.get(i).error);
      worst = Math.max(worst, relErr(onGpu.get(i).loss, onCpu.get(i).loss));
      for (int t = 0; t < onCpu.get(i).logprobs.length; t++) {
        worstLp = Math.max(worstLp, Math.abs(onGpu.get(i).logprobs[t] - onCpu.get(i).logprobs[t]));
      }
    }
    System.out.printf("GPU vs CPU: loss rel. err %.3g, logprob abs. err %.3g%n", worst, worstLp);
    assertTrue(worst < 1e-5, "loss: " + worst);
    assertTrue(worstLp < 1e-4, "logprobs: " + worstLp);

    for (String pooling : new String[] {"mean", "last"}) {
      MambaSettings e = MambaSettings.of("pooling", pooling, "pieceLength", "24");
      List<Doc> g = DocumentRunnerTest.docs(12, 40, 3);
      List<Doc> c = DocumentRunnerTest.docs(12, 40, 3);
      new DocumentRunner(gpu, e.runnerOptions()).embed(g);
      new DocumentRunner(model, e.runnerOptions()).embed(c);
      for (int i = 0; i < g.size(); i++) {
        assertArrayEquals(c.get(i).embedding, g.get(i).embedding, 1e-4f, pooling);
      }
    }

    List<Doc> g = DocumentRunnerTest.docs(10, 30);
    List<Doc> c = DocumentRunnerTest.docs(10, 30);
    new DocumentRunner(gpu, s.runnerOptions()).generate(g);
    new DocumentRunner(model, s.runnerOptions()).generate(c);
    for (int i = 0; i < g.size(); i++) {
      assertEquals(6, g.get(i).generated.length);
      assertArrayEquals(c.get(i).generated, g.get(i).generated, "greedy continuation");
    }
  }
}
