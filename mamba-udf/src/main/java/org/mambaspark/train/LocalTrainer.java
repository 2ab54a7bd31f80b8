package org.mambaspark.train;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.Scoring;
import org.mambaspark.model.TokenIds;
import org.mambaspark.model.Workspace;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The single-process training loop, the reference the Spark job must reproduce: per step,
 * micro-batches accumulate the gradient of the step's mean loss into one buffer, the global norm is
 * clipped, AdamW steps at the scheduled rate. A non-finite loss or gradient skips the step
 * (counted; several in a row stop the run) and never reaches a checkpoint. Steps are a pure
 * function of (weights, optimizer state, seed, step), so {@link #resume} continues exactly where
 * {@link #save} left off.
 */
public final class LocalTrainer {
  private static final Logger LOG = LoggerFactory.getLogger(LocalTrainer.class);

  /** One step's outcome. */
  public static final class StepResult {
    public final long step;
    public final double loss;
    public final double gradNorm;
    public final float lr;
    public final double tokensPerSecond;
    public final boolean skipped;

    StepResult(long step, double loss, double gradNorm, float lr, double tps, boolean skipped) {
      this.step = step;
      this.loss = loss;
      this.gradNorm = gradNorm;
      this.lr = lr;
      this.tokensPerSecond = tps;
      this.skipped = skipped;
    }
  }

  private final MambaWeights weights;
  private final MambaModel model;
  private final TrainOptions opt;
  private final AdamW adam;
  private final MambaWeights grads;
  private final TokenSampler train;
  private final TokenSampler eval;
  private final int[] ids;
  private long skipped;
  private int badInARow;

  /**
   * @param tokens the whole corpus; its last {@code evalFraction} is held out for the eval loss
   */
  public LocalTrainer(MambaWeights weights, int[] tokens, TrainOptions opt) {
    opt.validate();
    this.weights = weights;
    this.model = new MambaModel(weights);
    this.opt = opt;
    this.adam = new AdamW(weights, opt.beta1, opt.beta2, opt.eps, opt.weightDecay);
    this.grads = MambaWeights.zerosLike(weights);
    int split = (int) (tokens.length * (1 - opt.evalFraction));
    this.train = new TokenSampler(tokens, 0, split, opt.seed);
    this.eval = new TokenSampler(tokens, split, tokens.length, opt.seed ^ 0x5EED);
    this.ids = new int[opt.microBatch * opt.seqLen];
    String why = null;
    for (int i = 0; i < tokens.length && why == null; i++) {
      why = TokenIds.outside(tokens[i], i, weights.config.vocabSize);
    }
    if (why != null) {
      throw new IllegalArgumentException("the corpus: " + why);
    }
  }

  public long step() {
    return adam.step();
  }

  public MambaWeights weights() {
    return weights;
  }

  /**
   * Runs one optimizer step on the step's batch (its sequences drawn by the sampler from (seed,
   * step)).
   */
  public StepResult trainStep() {
    long s = adam.step();
    long t0 = System.nanoTime();
    int L = opt.seqLen;
    int[] flat = new int[opt.batch * L];
    train.fill(flat, s, 0, opt.batch, L);
    List<int[]> seqs = new ArrayList<>(opt.batch);
    for (int i = 0; i < opt.batch; i++) {
      seqs.add(Arrays.copyOfRange(flat, i * L, (i + 1) * L));
    }
    GradientSum sum = TrainStep.gradient(model, seqs, opt.microBatch, L, opt.scanChunk);
    TrainStep.Applied a = TrainStep.apply(weights, adam, sum, grads, opt.lrSchedule(), opt.clip);
    if (a.skipped) {
      skipped++;
      badInARow++;
      LOG.warn(
          "step {}: non-finite loss {} or gradient norm {}: step skipped ({} in a row)",
          s,
          a.loss,
          a.gradNorm,
          badInARow);
      if (badInARow >= opt.maxBadSteps) {
        throw new IllegalStateException(
            badInARow + " non-finite steps in a row at step " + s + ": stopping");
      }
    } else {
      badInARow = 0;
    }
    double secs = (System.nanoTime() - t0) / 1e9;
    return new StepResult(s, a.loss, a.gradNorm, a.lr, opt.batch * (double) L / secs, a.skipped);
  }

  /** Mean next-token loss over evalBatches held-out batches (the same ones every time). */
  public double evalLoss() {
    Workspace ws = new Workspace(weights.config);
    int L = opt.seqLen, M = opt.microBatch;
    double sum = 0;
    for (int b = 0; b < opt.evalBatches; b++) {
      eval.fill(ids, b, 0, M, L);
      sum += Scoring.meanNextTokenLoss(model, ws, ids, M, L);
    }
    return sum / opt.evalBatches;
  }

  /**
   * Trains until {@code opt.steps}, appending a line per step to {@code metrics.csv} in outDir and
   * saving a checkpoint every saveEvery steps and at the end.
   */
  public List<StepResult> run(Path outDir) {
    List<StepResult> results = new ArrayList<>();
    try {
      Files.createDirectories(outDir);
      Path csv = outDir.resolve("metrics.csv");
      boolean fresh = !Files.exists(csv);
      try (Writer out =
          Files.newBufferedWriter(
              csv, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
        if (fresh) {
          out.write("step,loss,lr,grad_norm,tokens_per_s,eval_loss,skipped\n");
        }
        while (adam.step() < opt.steps) {
          StepResult r = trainStep();
          results.add(r);
          boolean evalNow =
              opt.evalEvery > 0 && ((r.step + 1) % opt.evalEvery == 0 || r.step + 1 == opt.steps);
          double ev = evalNow ? evalLoss() : Double.NaN;
          out.write(
              String.format(
                  "%d,%.6f,%.6g,%.6f,%.1f,%s,%d%n",
                  r.step,
                  r.loss,
                  r.lr,
                  r.gradNorm,
                  r.tokensPerSecond,
                  evalNow ? String.format("%.6f", ev) : "",
                  r.skipped ? 1 : 0));
          out.flush();
          LOG.info(
              String.format(
                  "step %d/%d  loss %.4f  lr %.3g  grad norm %.3f  %.0f tokens/s%s",
                  r.step + 1,
                  opt.steps,
                  r.loss,
                  r.lr,
                  r.gradNorm,
                  r.tokensPerSecond,
                  evalNow ? String.format("  eval loss %.4f", ev) : ""));
          if (opt.saveEvery > 0 && (r.step + 1) % opt.saveEvery == 0 && r.step + 1 < opt.steps) {
            save(outDir);
          }
        }
      }
      save(outDir);
    } catch (IOException e) {
      throw new UncheckedIOException(outDir + ": " + e.getMessage(), e);
    }
    return results;
  }

  /**
   * Writes config.json, model.safetensors and the training state into dir (each file atomically).
   */
  public void save(Path dir) {
    Checkpoint.save(weights, dir);
    TrainingState.save(
        dir,
        adam,
        opt.seed,
        skipped,
        Map.of("seq_len", Integer.toString(opt.seqLen), "batch", Integer.toString(opt.batch)));
    LOG.info("saved checkpoint at step {} to {}", adam.step(), dir);
  }

  /**
   * A trainer that continues the run saved in dir (weights, moments, step, seed) with the same
   * options.
   */
  public static LocalTrainer resume(Path dir, int[] tokens, TrainOptions opt) {
    MambaWeights w = Checkpoint.load(dir);
    LocalTrainer t = new LocalTrainer(w, tokens, opt);
    Map<String, String> meta = TrainingState.load(dir, t.adam);
    String seed = meta.get("seed");
    if (seed != null && Long.parseLong(seed) != opt.seed) {
      throw new IllegalArgumentException(
          dir
              + ": the run was started with seed "
              + seed
              + ", not "
              + opt.seed
              + "; resume with the same seed to continue the same trajectory");
    }
    t.skipped = Long.parseLong(meta.getOrDefault("skipped_steps", "0"));
    LOG.info("resumed from {} at step {}", dir, t.adam.step());
    return t;
  }
}
