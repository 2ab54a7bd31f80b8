package org.mambaspark.cli;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import org.mambaspark.model.Generator;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.SamplingParams;
import org.mambaspark.tokenizer.Tokenizer;
import org.mambaspark.tokenizer.Tokenizers;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code bin/mamba generate}: continues a prompt; the last line of stdout is the new token ids,
 * comma-separated.
 */
@Command(
    name = "generate",
    mixinStandardHelpOptions = true,
    description =
        "Continue a prompt (greedy by default). Prints the text (when the model has a tokenizer), then, as"
            + " the last line, the new token ids comma-separated.")
final class GenerateCommand implements Callable<Integer> {
  @Option(
      names = "--model",
      required = true,
      description = "model directory (config.json + safetensors)")
  Path model;

  @ArgGroup(exclusive = true, multiplicity = "1")
  Prompt prompt;

  static final class Prompt {
    @Option(names = "--prompt", description = "prompt text (needs the model's tokenizer)")
    String text;

    @Option(names = "--prompt-ids", split = ",", description = "prompt token ids, e.g. 1,2,3")
    int[] ids;
  }

  @Option(
      names = "--max-new-tokens",
      defaultValue = "32",
      description = "at most this many new tokens")
  int maxNewTokens;

  @Option(names = "--temperature", defaultValue = "0", description = "0 = greedy (default)")
  float temperature;

  @Option(
      names = "--top-k",
      defaultValue = "0",
      description = "keep the k most likely tokens (0 = all)")
  int topK;

  @Option(names = "--top-p", defaultValue = "1", description = "nucleus sampling mass (1 = off)")
  float topP;

  @Option(names = "--seed", defaultValue = "0", description = "sampling seed")
  long seed;

  @Option(
      names = "--stop-ids",
      split = ",",
      description = "stop after any of these token ids (default: eos)")
  int[] stopIds;

  @Mixin CommonOptions common;

  @Mixin WeightsDtypeOption weightsDtype;

  @Override
  public Integer call() {
    common.apply();
    MambaModel m = weightsDtype.load(model);
    Optional<Tokenizer> tok = Tokenizers.forModel(model);
    int[] ids;
    if (prompt.text != null) {
      ids =
          tok.orElseThrow(
                  () ->
                      new IllegalArgumentException(
                          "model "
                              + model
                              + " has no tokenizer (tokenizer.json): pass --prompt-ids instead of --prompt"))
              .encode(prompt.text);
    } else {
      ids = prompt.ids;
    }
    int[] stops = stopIds != null ? stopIds : new int[] {m.config.eosTokenId};
    SamplingParams params = new SamplingParams(maxNewTokens, temperature, topK, topP, seed, stops);
    int[] out = new Generator(m).generate(ids, params, null);
    if (tok.isPresent()) {
      System.out.println(tok.get().decode(out));
    }
    System.out.println(
        Arrays.stream(out).mapToObj(Integer::toString).collect(Collectors.joining(",")));
    return 0;
  }
}
