package org.mambaspark.train;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.io.SafetensorsWriter;
import org.mambaspark.model.NamedTensor;

/**
 * How a checkpoint's weights and optimizer moments are split into files of whole tensors, so that
 * no process needs the whole model to write one: runs of consecutive parameters ({@link
 * org.mambaspark.model.MambaWeights#parameters()} order, so a file's data is one contiguous range
 * of the flat parameter vector) of at most {@code maxFileBytes} of fp32 weights each (a larger
 * tensor alone). One file is {@code model.safetensors} and {@code training_state.safetensors}, what
 * every loader and {@code train-local} read; several are Hugging Face's sharded layout, {@code
 * model-0000i-of-0000n.safetensors} with {@code model.safetensors.index.json} (and the same for the
 * state). A state file holds its parameters' first moments, then their second moments.
 */
public final class CheckpointLayout implements Serializable {
  private static final long serialVersionUID = 1L;

  private final String[] names; //   T parameter names
  private final long[][] shapes; //  T shapes
  private final long[] flatStart; // T+1 flat offsets
  private final int[] firstTensor; // K+1: file k holds tensors [firstTensor[k], firstTensor[k+1])

  public CheckpointLayout(List<NamedTensor> params, long maxFileBytes) {
    int T = params.size();
    names = new String[T];
    shapes = new long[T][];
    flatStart = new long[T + 1];
    List<Integer> first = new ArrayList<>(List.of(0));
    long bytes = 0;
    for (int t = 0; t < T; t++) {
      NamedTensor p = params.get(t);
      names[t] = p.name;
      shapes[t] = p.shape.clone();
      flatStart[t + 1] = flatStart[t] + p.numel();
      long b = 4 * p.numel();
      if (bytes > 0 && bytes + b > maxFileBytes) {
        first.add(t);
        bytes = 0;
      }
      bytes += b;
    }
    first.add(T);
    firstTensor = first.stream().mapToInt(Integer::intValue).toArray();
  }

  /** K, the number of model files (and of state files). */
  public int files() {
    return firstTensor.length - 1;
  }

  /** File k's first element in the flat parameter vector. */
  public long flatStart(int k) {
    return flatStart[firstTensor[k]];
  }

  /** One past file k's last element in the flat parameter vector. */
  public long flatEnd(int k) {
    return flatStart[firstTensor[k + 1]];
  }

  public String modelFile(int k) {
    return fileName("model", k);
  }

  public String stateFile(int k) {
    return fileName("training_state", k);
  }

  private String fileName(String stem, int k) {
    int n = files();
    return n == 1
        ? stem + ".safetensors"
        : String.format("%s-%05d-of-%05d.safetensors", stem, k + 1, n);
  }

  /** File k of the weights, its tensors declared (F32, metadata format=pt): stream the data. */
  public SafetensorsWriter modelWriter(int k) {
    SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
    for (int t = firstTensor[k]; t < firstTensor[k + 1]; t++) {
      w.declareFloats(names[t], shapes[t]);
    }
    return w;
  }

  /** File k of the optimizer state: the first moments, then the second; the state's metadata. */
  public SafetensorsWriter stateWriter(int k, Map<String, String> metadata) {
    SafetensorsWriter w = new SafetensorsWriter();
    metadata.forEach(w::metadata);
    for (int t = firstTensor[k]; t < firstTensor[k + 1]; t++) {
      w.declareFloats(TrainingState.firstMoment(names[t]), shapes[t]);
    }
    for (int t = firstTensor[k]; t < firstTensor[k + 1]; t++) {
      w.declareFloats(TrainingState.secondMoment(names[t]), shapes[t]);
    }
    return w;
  }

  /**
   * Writes the indexes into {@code dir} when there are several files (nothing for one): the
   * model's, which transformers and {@link Checkpoint#load} read, and the state's.
   */
  public void writeIndexes(java.nio.file.Path dir) {
    if (files() == 1) {
      return;
    }
    Map<String, String> model = new LinkedHashMap<>(), state = new LinkedHashMap<>();
    for (int k = 0; k < files(); k++) {
      for (int t = firstTensor[k]; t < firstTensor[k + 1]; t++) {
        model.put(names[t], modelFile(k));
        state.put(TrainingState.firstMoment(names[t]), stateFile(k));
        state.put(TrainingState.secondMoment(names[t]), stateFile(k));
      }
    }
    long bytes = 4 * flatStart[names.length];
    Checkpoint.writeIndex(dir.resolve(Checkpoint.INDEX), model, bytes);
    Checkpoint.writeIndex(dir.resolve(TrainingState.INDEX), state, 2 * bytes);
  }

  /** Every file of the layout, model's and state's, indexes included. */
  public List<String> allFiles() {
    List<String> out = new ArrayList<>();
    for (int k = 0; k < files(); k++) {
      out.add(modelFile(k));
      out.add(stateFile(k));
    }
    if (files() > 1) {
      out.add(Checkpoint.INDEX);
      out.add(TrainingState.INDEX);
    }
    return out;
  }
}
