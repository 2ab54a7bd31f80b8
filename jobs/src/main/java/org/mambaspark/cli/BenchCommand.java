package org.mambaspark.cli;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import org.mambaspark.jobs.BenchJob;
import org.mambaspark.model.Backprop;
import org.mambaspark.model.Generator;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.SamplingParams;
import org.mambaspark.model.Scoring;
import org.mambaspark.model.Workspace;
import org.mambaspark.ops.Parallel;
import org.mambaspark.ops.Simd;
import org.mambaspark.train.AdamW;
import org.mambaspark.train.Gradients;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code bin/mamba bench forward|generate}: throughput on random weights of a published shape.
 * forward times the whole scoring pass (backbone, lm_head logits for every position, log-softmax
 * and loss); generate times greedy decoding after a prefill. Reports the median over the timed
 * iterations; the last line is {@code tokens/s: X}.
 */
@Command(
    name = "bench",
    mixinStandardHelpOptions = true,
    description =
        "Throughput on random weights: 'forward' (B×L tokens scored) or 'generate' (new tokens per"
            + " second, --batch sequences decoded together). Last line: tokens/s: <number>.")
final class BenchCommand implements Callable<Integer> {
  @Parameters(index = "0", description = "forward | generate")
  String what;

  @Option(
      names = "--preset",
      defaultValue = "mamba-130m",
      description =
          "mamba-130m | mamba-370m | mamba-790m | mamba-1.4b | mamba-2.8b | mamba2-130m |"
              + " mamba2-370m | mamba2-780m | mamba2-1.3b | mamba2-2.7b | falcon-mamba-7b")
  String preset;

  @Option(
      names = "--batch",
      defaultValue = "1",
      description = "B (forward, train; generate: rows decoded together)")
  int batch;

  @Option(
      names = "--seq-len",
      defaultValue = "512",
      description = "L (forward), prompt length (generate)")
  int seqLen;

  @Option(
      names = "--new-tokens",
      defaultValue = "64",
      description = "tokens to generate (generate)")
  int newTokens;

  @Option(
      names = "--warmup",
      defaultValue = "2",
      description = "untimed iterations first (JIT warm-up)")
  int warmup;

  @Option(names = "--iters", defaultValue = "5", description = "timed iterations")
  int iters;

  @Option(names = "--seed", defaultValue = "1", description = "weights and input seed")
  long seed;

  @Mixin CommonOptions common;

  @Mixin WeightsDtypeOption weightsDtype;

  @Override
  public Integer call() {
    common.apply();
    if (batch <= 0 || seqLen <= 1 || iters <= 0 || warmup < 0 || newTokens <= 0) {
      throw new IllegalArgumentException(
          "--batch, --iters, --new-tokens must be positive and --seq-len > 1");
    }
    MambaConfig c = MambaConfig.preset(preset);
    System.out.printf(
        "preset %s: %s, %,d parameters; threads %d; vector API %s%n",
        preset, c, c.parameterCount(), Parallel.threads(), Simd.ENABLED ? "on" : "OFF");
    MambaModel m = new MambaModel(Initialization.initialize(c, seed), weightsDtype.dtype());
    System.out.printf(
        "weights: matrices in %s, %,d MB%n", m.weightsDtype.label(), m.matrixBytes() >> 20);
    SplittableRandom rnd = new SplittableRandom(seed);
    double[] rates = new double[iters];
    double[] perCpu = new double[iters]; // tokens per CPU-second of the process: robust to load
    switch (what) {
      case "forward":
        {
          int[] ids = rnd.ints((long) batch * seqLen, 0, c.vocabSize).toArray();
          Workspace ws = new Workspace(c);
          for (int i = 0; i < warmup + iters; i++) {
            long t0 = System.nanoTime(), c0 = BenchJob.cpuNanos();
            double loss = Scoring.meanNextTokenLoss(m, ws, ids, batch, seqLen);
            double s = (System.nanoTime() - t0) / 1e9;
            double rate = batch * (double) seqLen / s;
            double cpuRate = batch * (double) seqLen / ((BenchJob.cpuNanos() - c0) / 1e9);
            System.out.printf(
                "%s %d: %.3f s, %.1f tokens/s, %.1f per CPU-second (loss %.4f)%n",
                i < warmup ? "warmup" : "iter",
                i < warmup ? i : i - warmup,
                s,
                rate,
                cpuRate,
                loss);
            if (i >= warmup) {
              rates[i - warmup] = rate;
              perCpu[i - warmup] = cpuRate;
            }
          }
          break;
        }
      case "generate":
        {
          // --batch sequences decoded together; time only the decode steps (prefill is
          // measured by 'forward'): from the last row's first token to the end
          int[][] prompts = new int[batch][];
          SamplingParams[] params = new SamplingParams[batch];
          for (int r = 0; r < batch; r++) {
            prompts[r] = rnd.ints(seqLen, 0, c.vocabSize).toArray();
            params[r] = new SamplingParams(newTokens + 1, 0f, 0, 1f, 0, new int[] {-1});
          }
          Generator g = new Generator(m);
          for (int i = 0; i < warmup + iters; i++) {
            long[] first = new long[2];
            long t0 = System.nanoTime();
            int last = batch - 1;
            int[][] out =
                g.generate(
                    prompts,
                    params,
                    (row, tok) -> {
                      if (row == last && first[0] == 0) {
                        first[0] = System.nanoTime();
                        first[1] = BenchJob.cpuNanos();
                      }
                    });
            double s = (System.nanoTime() - first[0]) / 1e9;
            double rate = batch * (double) newTokens / s;
            double cpuRate = batch * (double) newTokens / ((BenchJob.cpuNanos() - first[1]) / 1e9);
            System.out.printf(
                "%s %d: prefill %.3f s, %d steps of B=%d %.3f s, %.1f tokens/s, %.1f per CPU-second"
                    + " (%d tokens a row)%n",
                i < warmup ? "warmup" : "iter",
                i < warmup ? i : i - warmup,
                (first[0] - t0) / 1e9,
                newTokens,
                batch,
                s,
                rate,
                cpuRate,
                out[0].length);
            if (i >= warmup) {
              rates[i - warmup] = rate;
              perCpu[i - warmup] = cpuRate;
            }
          }
          break;
        }
      case "train":
        {
          // one optimizer step per iteration: forward + backward + clip + AdamW, as LocalTrainer
          // does
          int[] ids = rnd.ints((long) batch * seqLen, 0, c.vocabSize).toArray();
          MambaWeights grads = MambaWeights.zerosLike(m.weights);
          Backprop bp = new Backprop(m, batch, seqLen);
          AdamW adam = AdamW.withDefaults(m.weights);
          for (int i = 0; i < warmup + iters; i++) {
            long t0 = System.nanoTime();
            Gradients.zero(grads);
            double loss = bp.forwardBackward(ids, grads, 1.0 / ((double) batch * (seqLen - 1)));
            long t1 = System.nanoTime();
            Gradients.clipGlobalNorm(grads, 1.0);
            adam.update(m.weights, grads, 1e-5f);
            double s = (System.nanoTime() - t0) / 1e9;
            double rate = batch * (double) seqLen / s;
            System.out.printf(
                "%s %d: %.3f s (forward+backward %.3f s, optimizer %.3f s), %.1f tokens/s (loss %.4f)%n",
                i < warmup ? "warmup" : "iter",
                i < warmup ? i : i - warmup,
                s,
                (t1 - t0) / 1e9,
                (System.nanoTime() - t1) / 1e9,
                rate,
                loss / ((double) batch * (seqLen - 1)));
            if (i >= warmup) {
              rates[i - warmup] = rate;
            }
          }
          break;
        }
      default:
        throw new IllegalArgumentException(
            "bench: unknown benchmark '" + what + "' (forward | generate | train)");
    }
    Arrays.sort(rates);
    Arrays.sort(perCpu);
    if (perCpu[0] > 0) { // train does not measure it
      System.out.printf("tokens per CPU-second: %.1f%n", perCpu[perCpu.length / 2]);
    }
    System.out.printf("tokens/s: %.1f%n", rates[rates.length / 2]);
    return 0;
  }
}
