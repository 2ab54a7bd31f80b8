package org.mambaspark.cli;

import java.nio.file.Path;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.MambaModel;
import org.mambaspark.ops.WeightMatrix;
import picocli.CommandLine.Option;

/** {@code --weights-dtype}: the format the model's big matrices are held in. */
final class WeightsDtypeOption {
  @Option(
      names = "--weights-dtype",
      defaultValue = "fp32",
      paramLabel = "T",
      description =
          "fp32 (default) | bf16 | int8: the model's big matrices (embedding, lm_head, in/x/out_proj)"
              + " in memory; arithmetic stays fp32")
  String value;

  WeightMatrix.Dtype dtype() {
    return WeightMatrix.Dtype.parse(value, "--weights-dtype");
  }

  /** The checkpoint at dir, its matrices in the chosen format. */
  MambaModel load(Path dir) {
    return Checkpoint.loadModel(dir, dtype());
  }
}
