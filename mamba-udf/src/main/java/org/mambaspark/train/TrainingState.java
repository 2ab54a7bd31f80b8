package org.mambaspark.train;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.mambaspark.io.CheckpointException;
import org.mambaspark.io.SafetensorsFile;
import org.mambaspark.io.SafetensorsWriter;
import org.mambaspark.model.NamedTensor;

/**
 * What a run needs besides the weights to continue on exactly the same trajectory: the AdamW
 * moments ({@code exp_avg.<name>}, {@code exp_avg_sq.<name>}), the step (which is also the schedule
 * position and, through {@link TokenSampler}, the data position), the seed and the count of skipped
 * steps. One safetensors file next to the model, written atomically; the scalars live in its
 * metadata.
 */
public final class TrainingState {
  public static final String FILE = "training_state.safetensors";

  private TrainingState() {}

  public static void save(Path dir, AdamW opt, long seed, long skipped, Map<String, String> extra) {
    SafetensorsWriter w = new SafetensorsWriter().metadata("format", "mamba-spark-training-state");
    w.metadata("step", Long.toString(opt.step));
    w.metadata("seed", Long.toString(seed));
    w.metadata("skipped_steps", Long.toString(skipped));
    w.metadata("adamw", opt.beta1 + "," + opt.beta2 + "," + opt.eps + "," + opt.weightDecay);
    for (Map.Entry<String, String> e : extra.entrySet()) {
      w.metadata(e.getKey(), e.getValue());
    }
    for (NamedTensor t : opt.m.parameters()) {
      w.addFloats("exp_avg." + t.name, t.shape, t.data);
    }
    for (NamedTensor t : opt.v.parameters()) {
      w.addFloats("exp_avg_sq." + t.name, t.shape, t.data);
    }
    w.write(dir.resolve(FILE));
  }

  /**
   * Restores opt's moments and step; returns the file's metadata (seed, skipped_steps, caller's
   * extras).
   */
  public static Map<String, String> load(Path dir, AdamW opt) {
    Path file = dir.resolve(FILE);
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      Map<String, String> meta = f.metadata();
      List<NamedTensor> ms = opt.m.parameters(), vs = opt.v.parameters();
      for (int i = 0; i < ms.size(); i++) {
        read(f, "exp_avg." + ms.get(i).name, ms.get(i).data);
        read(f, "exp_avg_sq." + vs.get(i).name, vs.get(i).data);
      }
      String step = meta.get("step");
      if (step == null) {
        throw new CheckpointException(file, "no 'step' in the metadata: not a training state");
      }
      opt.step = Long.parseLong(step);
      return meta;
    }
  }

  private static void read(SafetensorsFile f, String name, float[] dst) {
    if (!f.contains(name)) {
      throw new CheckpointException(
          f.path(), "missing tensor '" + name + "' (training state of another model?)");
    }
    if (f.info(name).numel() != dst.length) {
      throw new CheckpointException(
          f.path(),
          "tensor '"
              + name
              + "' has "
              + f.info(name).numel()
              + " elements, the model's parameter has "
              + dst.length);
    }
    f.readFloats(name, dst);
  }
}
