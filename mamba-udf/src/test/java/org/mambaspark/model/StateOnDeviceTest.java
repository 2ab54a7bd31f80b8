package org.mambaspark.model;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The GPU runner keeps a recurrent state on the device between calls and brings it back whenever
 * the host or another runner needs it: two states alternating on one runner, a state moving between
 * a prefill and decode steps, read between steps, reset on the host, handed to the CPU runner, and
 * the runner closed while holding one; each against the same steps on the CPU (relative error
 * 1e-5).
 */
class StateOnDeviceTest {
  @AfterEach
  void clear() {
    new BackendsTest().clear();
  }

  /**
   * Threads generating on one GPU runner, each with its own states: each call may take the device's
   * state buffer from another thread's state, which must come home intact (a Spark executor's task
   * threads share the runner).
   */
  @Test
  void threadsGeneratingOnOneGpuRunnerKeepTheirStates() throws Exception {
    MambaModel m = BackendsTest.randomModel();
    int V = m.config.vocabSize;
    try (ModelRunner gpu = BackendsTest.gpu().open(m);
        ModelRunner cpu = Backends.cpu().open(m)) {
      ExecutorService pool = Executors.newFixedThreadPool(4);
      try {
        List<Future<String>> fs = new ArrayList<>();
        for (int task = 0; task < 12; task++) {
          int seed = task;
          fs.add(
              pool.submit(
                  () -> {
                    int[][] prompts = {
                      BackendsTest.ids(2 + seed % 4, V, seed), BackendsTest.ids(5, V, 50 + seed)
                    };
                    SamplingParams[] p = {SamplingParams.greedy(8), SamplingParams.greedy(5)};
                    int[][] got = new Generator(gpu, 4).generate(prompts, p, null);
                    int[][] want = new Generator(cpu, 4).generate(prompts, p, null);
                    return Arrays.deepEquals(got, want)
                        ? null
                        : Arrays.deepToString(got) + " vs " + Arrays.deepToString(want);
                  }));
        }
        for (Future<String> f : fs) {
          assertNull(f.get());
        }
      } finally {
        pool.shutdown();
      }
    }
  }

  @Test
  void statesHeldOnTheGpuComeBackWhenNeeded() {
    MambaModel m = BackendsTest.randomModel();
    MambaConfig c = m.config;
    int V = c.vocabSize;
    int B = 2;
    int[] prompt = BackendsTest.ids(B * 6, V, 1);
    int[] other = BackendsTest.ids(B * 3, V, 2);
    float[] lg = new float[B * V];
    double worst = 0;
    ModelRunner gpu = BackendsTest.gpu().open(m);
    try (ModelRunner cpu = Backends.cpu().open(m)) {
      Pair p = new Pair(gpu, cpu, B);
      MambaState g1 = new MambaState(c, B), c1 = new MambaState(c, B);
      MambaState g2 = new MambaState(c, B), c2 = new MambaState(c, B);
      worst = p.call("g1 prompt", prompt, g1, c1);
      assertNotNull(g1.holder(), "the state stays on the device after a call");
      worst = Math.max(worst, p.call("g2 prompt", other, g2, c2)); // g1 leaves the buffer for g2
      assertNull(g1.holder(), "g1 came back when g2 took the buffer");
      for (int s = 0; s < 3; s++) {
        int[] step = BackendsTest.ids(B, V, 10 + s);
        worst = Math.max(worst, p.call("g1 step " + s, step, g1, c1));
        worst = Math.max(worst, p.call("g2 step " + s, step, g2, c2));
      }
      // a step, a chunk of three tokens, a step: on a GPU whose decode steps have a kernel
      // program of their own, the state goes from that program's buffer to the whole model's and
      // back, device to device through the programs' host arrays
      int[] one = BackendsTest.ids(B, V, 30);
      worst = Math.max(worst, p.call("g1 step before a chunk", one, g1, c1));
      worst = Math.max(worst, p.call("g1 chunk", BackendsTest.ids(B * 3, V, 31), g1, c1));
      worst = Math.max(worst, p.call("g1 step after the chunk", one, g1, c1));
      // read between steps (comes back), then step again (goes out again)
      worst = Math.max(worst, BackendsTest.report("g2 ssm", g2.ssm(0), c2.ssm(0), 1e-5));
      assertNull(g2.holder());
      int[] step = BackendsTest.ids(B, V, 20);
      worst = Math.max(worst, p.call("g2 after a read", step, g2, c2));
      // a GPU-held state continued on the CPU runner
      cpu.forwardLastLogits(lg, step, B, 1, g2);
      cpu.forwardLastLogits(p.want, step, B, 1, c2);
      worst = Math.max(worst, BackendsTest.report("g2 on the cpu", lg, p.want, 1e-5));
      // reset on the host wins over what the device held
      gpu.forwardLastLogits(lg, step, B, 1, g1);
      g1.reset();
      c1.reset();
      worst = Math.max(worst, p.call("g1 after reset", prompt, g1, c1));
      // closing the runner brings the state it holds home
      gpu.close();
      assertNull(g1.holder(), "closing brought g1 back");
      for (int l = 0; l < c.numLayers; l++) {
        worst = Math.max(worst, BackendsTest.report("g1 conv " + l, g1.conv(l), c1.conv(l), 1e-5));
        worst = Math.max(worst, BackendsTest.report("g1 ssm " + l, g1.ssm(l), c1.ssm(l), 1e-5));
      }
      System.out.printf("state kept on the device vs the cpu: largest rel err %.2e%n", worst);
    } finally {
      gpu.close();
    }
  }

  /** The same call on the GPU and the CPU runner, each with its own state, logits compared. */
  private static final class Pair {
    final ModelRunner gpu;
    final ModelRunner cpu;
    final int B;
    final float[] got;
    final float[] want;

    Pair(ModelRunner gpu, ModelRunner cpu, int B) {
      this.gpu = gpu;
      this.cpu = cpu;
      this.B = B;
      int V = gpu.model().config.vocabSize;
      this.got = new float[B * V];
      this.want = new float[B * V];
    }

    /** B rows of ids (their length / B tokens each) on both runners: the logits' rel err. */
    double call(String what, int[] ids, MambaState onGpu, MambaState onCpu) {
      int L = ids.length / B;
      gpu.forwardLastLogits(got, ids, B, L, onGpu);
      cpu.forwardLastLogits(want, ids, B, L, onCpu);
      return BackendsTest.report(what, got, want, 1e-5);
    }
  }
}
