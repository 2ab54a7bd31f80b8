package org.mambaspark.spark;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.tokenizer.Tokenizers;

/** A small byte-level model written to disk, for the Spark glue's tests. */
public final class TestModels {
  private TestModels() {}

  /** V = 256 (bytes), D = 32, ED = 64, N = 8, 2 layers; random but fixed weights. */
  public static MambaConfig config() {
    return MambaConfig.builder().vocabSize(256).hiddenSize(32).stateSize(8).numLayers(2).build();
  }

  /** Writes the model (config.json, model.safetensors, byte tokenizer marker) into dir/name. */
  public static Path write(Path dir, String name) throws IOException {
    Path out = dir.resolve(name);
    Files.createDirectories(out);
    MambaWeights w = Initialization.initialize(config(), 7);
    Checkpoint.save(w, out);
    Tokenizers.writeByteTokenizerMarker(out);
    return out;
  }

  public static MambaModel load(Path dir) {
    return new MambaModel(Checkpoint.load(dir));
  }
}
