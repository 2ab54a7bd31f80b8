package org.mambaspark.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.tokenizer.Tokenizers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code bin/mamba init}: a freshly initialised (untrained) checkpoint in the Hugging Face layout.
 */
@Command(
    name = "init",
    mixinStandardHelpOptions = true,
    description =
        "Write a randomly initialised model (config.json + model.safetensors), as HF/mamba_ssm initialise"
            + " one for training from scratch.")
final class InitCommand implements Callable<Integer> {
  @Option(names = "--out", required = true, description = "output directory")
  Path out;

  @Option(
      names = "--preset",
      description = "a published shape (mamba-130m ...); else the flags below")
  String preset;

  @Option(
      names = "--vocab-size",
      defaultValue = "256",
      description = "V (256 with --tokenizer bytes)")
  int vocabSize;

  @Option(names = "--hidden-size", defaultValue = "64", description = "D")
  int hiddenSize;

  @Option(names = "--layers", defaultValue = "2", description = "number of layers")
  int layers;

  @Option(names = "--state-size", defaultValue = "16", description = "N")
  int stateSize;

  @Option(names = "--expand", defaultValue = "2", description = "ED = expand * D")
  int expand;

  @Option(names = "--conv-kernel", defaultValue = "4", description = "K")
  int convKernel;

  @Option(names = "--time-step-rank", defaultValue = "-1", description = "R (default ceil(D/16))")
  int timeStepRank;

  @Option(names = "--untied", description = "a separate lm_head instead of the tied embedding")
  boolean untied;

  @Option(names = "--tokenizer", defaultValue = "bytes", description = "bytes | none")
  String tokenizer;

  @Option(names = "--seed", defaultValue = "0", description = "initialisation seed")
  long seed;

  @Override
  public Integer call() throws IOException {
    MambaConfig c =
        preset != null
            ? MambaConfig.preset(preset)
            : MambaConfig.builder()
                .vocabSize(vocabSize)
                .hiddenSize(hiddenSize)
                .numLayers(layers)
                .stateSize(stateSize)
                .expand(expand)
                .convKernel(convKernel)
                .timeStepRank(timeStepRank)
                .tieWordEmbeddings(!untied)
                .build();
    MambaWeights w = Initialization.initialize(c, seed);
    Files.createDirectories(out);
    Checkpoint.save(w, out);
    switch (tokenizer) {
      case "bytes":
        if (c.vocabSize < 256) {
          throw new IllegalArgumentException(
              "--tokenizer bytes needs --vocab-size >= 256, got " + c.vocabSize);
        }
        Tokenizers.writeByteTokenizerMarker(out);
        break;
      case "none":
        break;
      default:
        throw new IllegalArgumentException(
            "--tokenizer must be bytes or none, got '" + tokenizer + "'");
    }
    System.out.printf("wrote %s: %s, %,d parameters, seed %d%n", out, c, c.parameterCount(), seed);
    return 0;
  }
}
