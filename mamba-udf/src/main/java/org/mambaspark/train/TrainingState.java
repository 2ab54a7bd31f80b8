package org.mambaspark.train;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.io.CheckpointException;
import org.mambaspark.io.SafetensorsFile;
import org.mambaspark.io.SafetensorsWriter;
import org.mambaspark.io.TensorLocation;
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

  /** The index of a state kept in several files, as the model's shards are. */
  public static final String INDEX = "training_state.safetensors.index.json";

  private TrainingState() {}

  /** The first moment's tensor name for a parameter. */
  public static String firstMoment(String parameter) {
    return "exp_avg." + parameter;
  }

  /** The second moment's tensor name for a parameter. */
  public static String secondMoment(String parameter) {
    return "exp_avg_sq." + parameter;
  }

  /** The scalars a state file carries in its metadata: step, seed, skipped steps, AdamW's own. */
  public static Map<String, String> metadata(
      AdamW.Settings h, long step, long seed, long skipped, Map<String, String> extra) {
    Map<String, String> m = new LinkedHashMap<>();
    m.put("format", "mamba-spark-training-state");
    m.put("step", Long.toString(step));
    m.put("seed", Long.toString(seed));
    m.put("skipped_steps", Long.toString(skipped));
    m.put("adamw", h.beta1() + "," + h.beta2() + "," + h.eps() + "," + h.weightDecay());
    m.putAll(extra);
    return m;
  }

  public static void save(Path dir, AdamW opt, long seed, long skipped, Map<String, String> extra) {
    SafetensorsWriter w = new SafetensorsWriter();
    for (Map.Entry<String, String> e :
        metadata(opt.settings(), opt.step, seed, skipped, extra).entrySet()) {
      w.metadata(e.getKey(), e.getValue());
    }
    for (NamedTensor t : opt.m.parameters()) {
      w.addFloats(firstMoment(t.name), t.shape, t.data);
    }
    for (NamedTensor t : opt.v.parameters()) {
      w.addFloats(secondMoment(t.name), t.shape, t.data);
    }
    w.write(dir.resolve(FILE));
  }

  /**
   * The metadata of the state in {@code dir} (one file, or the first of several), read from the
   * header alone.
   */
  public static Map<String, String> metadata(Path dir) {
    Map<String, String> meta = Checkpoint.metadata(dir, FILE, INDEX);
    if (meta.get("step") == null) {
      throw new CheckpointException(
          dir.resolve(FILE), "no 'step' in the metadata: not a training state");
    }
    return meta;
  }

  /**
   * Where both moments of every parameter lie: [0] the first moments, [1] the second, each in the
   * order of {@code params}; every tensor present with the parameter's element count.
   */
  public static TensorLocation[][] locate(Path dir, List<NamedTensor> params) {
    Map<String, TensorLocation> all = Checkpoint.locateAll(dir, FILE, INDEX);
    TensorLocation[][] out = new TensorLocation[2][params.size()];
    for (int i = 0; i < params.size(); i++) {
      NamedTensor p = params.get(i);
      out[0][i] = checked(dir, all, firstMoment(p.name), p.numel());
      out[1][i] = checked(dir, all, secondMoment(p.name), p.numel());
    }
    return out;
  }

  /**
   * Restores opt's moments and step; returns the file's metadata (seed, skipped_steps, caller's
   * extras).
   */
  public static Map<String, String> load(Path dir, AdamW opt) {
    Map<String, String> meta = metadata(dir);
    List<NamedTensor> ms = opt.m.parameters(), vs = opt.v.parameters();
    TensorLocation[][] at = locate(dir, ms);
    for (int i = 0; i < ms.size(); i++) {
      read(dir, at[0][i], ms.get(i).data);
      read(dir, at[1][i], vs.get(i).data);
    }
    opt.step = Long.parseLong(meta.get("step"));
    return meta;
  }

  private static TensorLocation checked(
      Path dir, Map<String, TensorLocation> all, String name, long numel) {
    TensorLocation t = all.get(name);
    if (t == null) {
      throw new CheckpointException(
          dir.resolve(FILE), "missing tensor '" + name + "' (training state of another model?)");
    }
    if (t.numel() != numel) {
      throw new CheckpointException(
          dir.resolve(t.file()),
          "tensor '"
              + name
              + "' has "
              + t.numel()
              + " elements, the model's parameter has "
              + numel);
    }
    return t;
  }

  private static void read(Path dir, TensorLocation t, float[] dst) {
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(t.file()))) {
      f.readFloats(t.name(), dst);
    }
  }
}
