package org.mambaspark.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.Architecture;
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
      description =
          "a published shape (mamba-130m ... mamba-2.8b, mamba2-130m ... mamba2-2.7b,"
              + " falcon-mamba-7b); else the flags below")
  String preset;

  @Option(
      names = "--arch",
      description = "mamba (default) | mamba2 | falcon-mamba (a preset names its own)")
  String arch;

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

  @Option(
      names = "--head-dim",
      defaultValue = "64",
      description = "mamba2: P, channels per head (ED = expand * D must be a multiple)")
  int headDim;

  @Option(
      names = "--groups",
      defaultValue = "1",
      description = "mamba2: G, groups of heads sharing B and C")
  int groups;

  @Option(
      names = "--chunk-size",
      defaultValue = "256",
      description = "mamba2: positions per chunk of the scan")
  int chunkSize;

  @Option(names = "--untied", description = "a separate lm_head instead of the tied embedding")
  boolean untied;

  @Option(names = "--tokenizer", defaultValue = "bytes", description = "bytes | none")
  String tokenizer;

  @Option(names = "--seed", defaultValue = "0", description = "initialisation seed")
  long seed;

  @Override
  public Integer call() throws IOException {
    Architecture a = arch == null ? null : Architecture.ofCliName(arch);
    if (preset != null && a != null && MambaConfig.preset(preset).architecture != a) {
      throw new IllegalArgumentException(
          "--arch " + arch + " does not match --preset " + preset + "; give one of them");
    }
    MambaConfig c =
        preset != null
            ? MambaConfig.preset(preset)
            : MambaConfig.builder()
                .architecture(a == null ? Architecture.MAMBA : a)
                .headDim(headDim)
                .nGroups(groups)
                .chunkSize(chunkSize)
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
