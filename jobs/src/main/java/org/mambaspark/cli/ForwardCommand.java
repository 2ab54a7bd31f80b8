package org.mambaspark.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.mambaspark.io.SafetensorsFile;
import org.mambaspark.io.SafetensorsWriter;
import org.mambaspark.io.TensorInfo;
import org.mambaspark.model.Backprop;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.NamedTensor;
import org.mambaspark.model.Scoring;
import org.mambaspark.model.TokenIds;
import org.mambaspark.model.Workspace;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code bin/mamba forward}: the full forward of a batch of token ids, written as the fixtures lay
 * it out (logits, loss, hidden_states.i, last_hidden_state), so any output can be compared with
 * transformers'.
 */
@Command(
    name = "forward",
    mixinStandardHelpOptions = true,
    description =
        "Forward a batch: IN holds input_ids (I64 [B, L]); OUT gets logits, loss, hidden_states.i.")
final class ForwardCommand implements Callable<Integer> {
  @Option(names = "--model", required = true, description = "model directory")
  Path model;

  @Option(
      names = "--input",
      required = true,
      description = "safetensors file with input_ids (I64 [B, L])")
  Path input;

  @Option(names = "--output", required = true, description = "safetensors file to write")
  Path output;

  @Option(
      names = "--grads",
      description =
          "also write grad.<parameter name> (F32): the gradient of the mean loss (a tied head's"
              + " gradient is in backbone.embeddings.weight)")
  boolean grads;

  @Mixin CommonOptions common;

  @Mixin WeightsDtypeOption weightsDtype;

  @Override
  public Integer call() {
    common.apply();
    MambaModel m = weightsDtype.load(model);
    MambaConfig c = m.config;
    int B, L;
    int[] ids;
    try (SafetensorsFile in = SafetensorsFile.open(input)) {
      if (!in.contains("input_ids")) {
        throw new IllegalArgumentException(
            input + ": no tensor 'input_ids' (found " + in.names() + ")");
      }
      TensorInfo info = in.info("input_ids");
      long[] shape = info.shape();
      if (shape.length != 2 || shape[0] <= 0 || shape[1] <= 0) {
        throw new IllegalArgumentException(
            input
                + ": input_ids must be [B, L] with B, L > 0, got "
                + java.util.Arrays.toString(shape));
      }
      B = Math.toIntExact(shape[0]);
      L = Math.toIntExact(shape[1]);
      long[] raw = in.readLongs("input_ids");
      ids = new int[raw.length];
      for (int i = 0; i < raw.length; i++) {
        String why = TokenIds.outside(raw[i], i % L, c.vocabSize);
        if (why != null) {
          throw new IllegalArgumentException(input + ": input_ids row " + i / L + ": " + why);
        }
        ids[i] = (int) raw[i];
      }
    }
    int BT = B * L, D = c.hiddenSize, V = c.vocabSize;
    if ((long) BT * V > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(
          "logits of [" + B + ", " + L + ", " + V + "] exceed one array; use fewer rows");
    }
    Workspace ws = new Workspace(c);
    float[][] hs = new float[c.numLayers + 1][BT * D];
    m.forward(ws, ids, B, L, null, hs);
    float[] logits = new float[BT * V];
    m.lmHeadForward(logits, ws.hidden, 0, BT);
    SafetensorsWriter out = new SafetensorsWriter().metadata("format", "pt");
    out.addFloats("logits", new long[] {B, L, V}, logits);
    if (L >= 2) {
      float loss = (float) Scoring.meanNextTokenLossOfHidden(m, ws, ids, B, L);
      out.addFloats("loss", new long[] {1}, new float[] {loss});
    }
    for (int i = 0; i <= c.numLayers; i++) {
      out.addFloats("hidden_states." + i, new long[] {B, L, D}, hs[i]);
    }
    out.addFloats("last_hidden_state", new long[] {B, L, D}, hs[c.numLayers]);
    if (grads) {
      if (L < 2) {
        throw new IllegalArgumentException(
            "--grads needs sequences of at least 2 tokens, got L = " + L);
      }
      MambaWeights g = MambaWeights.zerosLike(m.weights);
      new Backprop(m, B, L).forwardBackward(ids, g, 1.0 / ((double) B * (L - 1)));
      for (NamedTensor t : g.parameters()) {
        out.addFloats("grad." + t.name, t.shape, t.data);
      }
    }
    out.write(output);
    System.out.printf(
        "wrote %s: logits [%d, %d, %d]%s%n", output, B, L, V, L >= 2 ? "" : " (no loss: L < 2)");
    return 0;
  }
}
