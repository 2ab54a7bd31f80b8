package org.mambaspark.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.tokenizer.Tokenizer;
import org.mambaspark.tokenizer.Tokenizers;
import org.mambaspark.train.LocalTrainer;
import org.mambaspark.train.TrainOptions;
import org.mambaspark.train.TrainingState;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code bin/mamba train-local}: the single-process training loop on a text corpus (tokenized with
 * the model's tokenizer; a new model is byte-level), so the math can be watched learning before
 * Spark enters. Writes the checkpoint, its training state and metrics.csv to --out; --resume
 * continues a run saved there.
 */
@Command(
    name = "train-local",
    mixinStandardHelpOptions = true,
    description =
        "Train in this process on a text file; logs loss per step; saves an HF checkpoint + training"
            + " state to --out.")
final class TrainLocalCommand implements Callable<Integer> {
  @Option(
      names = {"--input", "--corpus"},
      required = true,
      description = "UTF-8 text file")
  Path corpus;

  @Option(
      names = {"--output", "--out"},
      required = true,
      description = "output directory (checkpoint, metrics.csv)")
  Path out;

  @Option(
      names = "--init",
      description = "start from this checkpoint (fine-tuning); default: a new byte model")
  Path init;

  @Option(names = "--resume", description = "continue the run saved in --out")
  boolean resume;

  @Option(names = "--hidden-size", defaultValue = "64", description = "D of a new model")
  int hiddenSize;

  @Option(names = "--layers", defaultValue = "2", description = "layers of a new model")
  int layers;

  @Option(names = "--state-size", defaultValue = "16", description = "N of a new model")
  int stateSize;

  @Option(names = "--steps", defaultValue = "300")
  long steps;

  @Option(
      names = {"--global-batch", "--batch"},
      defaultValue = "8",
      description = "sequences per step")
  int batch;

  @Option(
      names = "--micro-batch",
      defaultValue = "8",
      description = "sequences per forward/backward")
  int microBatch;

  @Option(names = "--seq-len", defaultValue = "128")
  int seqLen;

  @Option(names = "--lr", defaultValue = "3e-3")
  float lr;

  @Option(names = "--min-lr", defaultValue = "3e-4")
  float minLr;

  @Option(
      names = {"--warmup-steps", "--warmup"},
      defaultValue = "20")
  long warmup;

  @Option(names = "--schedule", defaultValue = "cosine", description = "cosine | constant")
  String schedule;

  @Option(names = "--weight-decay", defaultValue = "0.01")
  float weightDecay;

  @Option(
      names = {"--clip-grad", "--clip"},
      defaultValue = "1.0",
      description = "global gradient-norm clip (0 = off)")
  float clip;

  @Option(names = "--seed", defaultValue = "0")
  long seed;

  @Option(names = "--eval-every", defaultValue = "50")
  int evalEvery;

  @Option(
      names = {"--checkpoint-every", "--save-every"},
      defaultValue = "0")
  int saveEvery;

  @Mixin CommonOptions common;

  @Override
  public Integer call() throws IOException {
    common.apply();
    TrainOptions o = new TrainOptions();
    o.steps = steps;
    o.batch = batch;
    o.microBatch = Math.min(microBatch, batch);
    o.seqLen = seqLen;
    o.lr = lr;
    o.minLr = Math.min(minLr, lr);
    o.warmupSteps = Math.min(warmup, steps);
    o.schedule = schedule;
    o.weightDecay = weightDecay;
    o.clip = clip;
    o.seed = seed;
    o.evalEvery = evalEvery;
    o.saveEvery = saveEvery;
    if (!Files.isRegularFile(corpus)) {
      throw new IllegalArgumentException("--input " + corpus + ": no such file");
    }
    String text = Files.readString(corpus);
    LocalTrainer trainer;
    Tokenizer tok;
    if (resume) {
      if (!Files.exists(out.resolve(TrainingState.FILE))) {
        throw new IllegalArgumentException("--resume: no " + TrainingState.FILE + " in " + out);
      }
      tok =
          Tokenizers.forModel(out)
              .orElseThrow(() -> new IllegalArgumentException(out + " has no tokenizer"));
      trainer = LocalTrainer.resume(out, tok.encode(text), o);
    } else {
      MambaWeights w;
      if (init != null) {
        w = Checkpoint.load(init);
        tok =
            Tokenizers.forModel(init)
                .orElseThrow(
                    () ->
                        new IllegalArgumentException(
                            init + " has no tokenizer to read the corpus with"));
      } else {
        MambaConfig c =
            MambaConfig.builder()
                .vocabSize(256)
                .hiddenSize(hiddenSize)
                .numLayers(layers)
                .stateSize(stateSize)
                .build();
        w = Initialization.initialize(c, seed);
        tok = Tokenizers.byName("bytes");
      }
      trainer = new LocalTrainer(w, tok.encode(text), o);
      Files.createDirectories(out);
      if (init != null && Files.exists(init.resolve(Tokenizers.TOKENIZER_JSON))) {
        Files.copy(
            init.resolve(Tokenizers.TOKENIZER_JSON),
            out.resolve(Tokenizers.TOKENIZER_JSON),
            java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      } else if (init == null || Files.exists(init.resolve(Tokenizers.TOKENIZER_CONFIG))) {
        Tokenizers.writeByteTokenizerMarker(out);
      }
    }
    double before = trainer.evalLoss();
    trainer.run(out);
    double after = trainer.evalLoss();
    System.out.printf(
        "held-out loss %.4f -> %.4f after %d steps; checkpoint in %s%n",
        before, after, trainer.step(), out);
    return 0;
  }
}
